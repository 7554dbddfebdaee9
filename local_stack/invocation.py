"""The processor as Lambda runs it, with a pipeline the local stack can observe and fault-inject.

The pipeline is built from the same pieces and the same environment as
:func:`telemetry_adapter.runtime.default_pipeline`, with three differences at the boundaries: the Kinesis
client may be wrapped in :class:`devkit.kinesis.FlakyKinesis` (record failures like a throttled
stream), the quarantine's S3 client has timeouts that fit the local runner's short invocations, and
:class:`RecordingPipeline` adds every concluded :class:`BatchReport` (backoff and circuit breaker
included) to the run's tally. The
handler is :func:`processor.handler.handle_batch` under the same Powertools decorators as
``lambda_handler`` (context in the logs, EMF metrics flushed per invocation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devkit.kinesis import FlakyKinesis
from local_stack.tally import Tally
from processor.handler import handle_batch
from telemetry_adapter.config import Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import inject_lambda_context, metrics
from telemetry_adapter.pipeline import BatchPipeline, BatchReport
from telemetry_adapter.publisher import KinesisClient, OrderedPublisher
from telemetry_adapter.quarantine import QuarantineStore, s3_client
from telemetry_adapter.runtime import kinesis_client, ledger_from_env, visibility_backoff

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# The local endpoint answers in milliseconds; the deployed client's bound (7 s) would never fit the
# local runner's 5-second invocations, so every rejected message would wait for a longer one.
_QUARANTINE_CONNECT_SECONDS = 0.5
_QUARANTINE_READ_SECONDS = 1.0


class RecordingPipeline(BatchPipeline):
    """A :class:`BatchPipeline` that adds each batch's report to a tally, once the batch is concluded."""

    def __init__(
        self, settings: Settings, ledger: Ledger, publisher: OrderedPublisher, tally: Tally, **options: Any
    ) -> None:
        super().__init__(settings, ledger, publisher, **options)
        self._tally = tally

    def conclude(self, records: Sequence[Mapping[str, Any]], report: BatchReport, deadline: Deadline) -> None:
        """Conclude the batch, then record what happened."""
        super().conclude(records, report, deadline)
        self._tally.add_report(report)
        self._tally.set(breaker=report.breaker_state.value, breaker_opened=self.breaker.times_opened)


def build_pipeline(tally: Tally, *, kinesis_error_rate: float = 0.0, seed: int = 1) -> RecordingPipeline:
    """The processor's pipeline from the environment, optionally with Kinesis record failures."""
    settings = Settings.from_env(check_time_budget=False)  # runs short invocations on purpose
    ledger = ledger_from_env()
    client: KinesisClient = kinesis_client()
    if kinesis_error_rate > 0:
        client = FlakyKinesis(client, record_failure_rate=kinesis_error_rate, seed=seed)
    publisher = OrderedPublisher(client, settings.stream_name, settings.publish)
    return RecordingPipeline(
        settings,
        ledger,
        publisher,
        tally,
        backoff=visibility_backoff(settings),
        quarantine=local_quarantine(settings),
    )


def local_quarantine(settings: Settings) -> QuarantineStore | None:
    """The quarantine store of ``QUARANTINE_BUCKET`` (None when unset), with a client whose bound fits
    a local invocation: one attempt, short timeouts."""
    if not settings.quarantine_bucket:
        return None
    client = s3_client(
        connect_timeout=_QUARANTINE_CONNECT_SECONDS, read_timeout=_QUARANTINE_READ_SECONDS, max_attempts=1
    )
    bound = _QUARANTINE_CONNECT_SECONDS + _QUARANTINE_READ_SECONDS
    return QuarantineStore(client, settings.quarantine_bucket, call_seconds=bound)


def lambda_style_handler(pipeline: BatchPipeline) -> Handler:
    """``lambda_handler``'s decorators around ``handle_batch`` with the given pipeline."""

    @inject_lambda_context
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_batch(event, context, pipeline)

    return handler
