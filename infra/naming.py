"""Physical names, all derived from the stage, so several stages fit one account and region.

Every resource that has a name people type or look for (queues, stream, database, functions, log
groups, alarms, dashboard, topic) gets it from here; a retry of a failed first create in another
stage can never collide with what the failed one left behind, and two stages never share anything.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCT = "telemetry-adapter"
TITLE = "TelemetryAdapter"


@dataclass(frozen=True)
class Names:
    """The names of one stage's resources."""

    stage: str

    @property
    def prefix(self) -> str:
        """``telemetry-adapter-<stage>``: the start of every lower-case name."""
        return f"{PRODUCT}-{self.stage}"

    @property
    def stack(self) -> str:
        """The CloudFormation stack, ``TelemetryAdapter-<stage>``."""
        return f"{TITLE}-{self.stage}"

    def resource(self, name: str) -> str:
        """A queue, stream, database, proxy, topic or function name: ``telemetry-adapter-<stage>-<name>``."""
        return f"{self.prefix}-{name}"

    def bucket(self, name: str, unique: str) -> str:
        """An S3 bucket: ``telemetry-adapter-<stage>-<name>-<unique>``.

        Bucket names are global across every AWS account, so the stage alone cannot make one unique;
        ``unique`` is a value no other stack shares (the start of the stack's id). At most 63
        characters with a twenty-character stage, a name of up to thirteen and eight for ``unique``.
        """
        return f"{self.prefix}-{name}-{unique}"

    def function_log_group(self, function: str) -> str:
        """Where Lambda would put the function's log group itself, and where people look for it."""
        return f"/aws/lambda/{self.resource(function)}"

    def log_group(self, name: str) -> str:
        """A log group that belongs to no function: ``/telemetry-adapter/<stage>/<name>``."""
        return f"/{PRODUCT}/{self.stage}/{name}"

    def alarm(self, name: str) -> str:
        """An alarm: ``TelemetryAdapter-<stage>-<Name>`` (the runbook section is ``<Name>``)."""
        return f"{TITLE}-{self.stage}-{name}"

    @property
    def alarm_prefix(self) -> str:
        """What every alarm name of the stage starts with (the alarm topic's key policy is scoped to it)."""
        return f"{TITLE}-{self.stage}-"

    @property
    def dashboard(self) -> str:
        """The CloudWatch dashboard."""
        return f"{TITLE}-{self.stage}"
