"""Which stack the tool works on, and the AWS clients to reach it.

Three ways to name it, combinable (an explicit flag wins over what the other two found):

* ``--stack TelemetryAdapter-<stage>``: the CloudFormation stack's outputs, read with boto3. AWS
  credentials (the usual chain: environment, profile, SSO, role) and the stack's name are all it takes.
  The health function answers through Lambda ``Invoke``.
* ``--local``: the file a running ``make run`` writes (``build/local-stack.json``): its moto endpoint,
  queues, bucket and stream, its health URL, and its ledger, read in process.
* ``--queue-url``, ``--dlq-url``, ``--bucket``, ``--health-function``, ``--health-url``,
  ``--database-url``, ``--endpoint-url``, ``--region``: one by one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from local_stack.environment import FAKE_CREDENTIALS
from local_stack.services import region_from_env
from local_stack.stack_file import DEFAULT_PATH, StackFileError, read

OUTPUT_KEYS = {
    "queue_url": "QueueUrl",
    "dlq_url": "DeadLetterQueueUrl",
    "quarantine_bucket": "QuarantineBucketName",
    "stream_name": "StreamName",
    "health_function": "HealthFunctionName",
}
"""The stack outputs the tool reads (``infra/stack.py`` writes them), by the target field they fill."""

FLAGS = {
    "queue_url": "--queue-url",
    "dlq_url": "--dlq-url",
    "quarantine_bucket": "--bucket",
    "stream_name": "--stream",
    "health_function": "--health-function",
    "health_url": "--health-url",
    "database_url": "--database-url",
    "endpoint_url": "--endpoint-url",
    "region": "--region",
}
"""The flag that sets each target field explicitly."""


class TargetError(ValueError):
    """The target cannot be found or lacks what a verb needs; the message says which flag gives it."""


@dataclass(frozen=True)
class Target:
    """Where the stack's parts are. Unset parts are None; a verb that needs one asks with :meth:`need`."""

    description: str = "endpoints given by flags"
    queue_url: str | None = None
    dlq_url: str | None = None
    quarantine_bucket: str | None = None
    stream_name: str | None = None
    health_function: str | None = None
    """The health function's name: operations by Lambda ``Invoke`` (a deployed stack)."""
    health_url: str | None = None
    """The health endpoint's URL (a local stack): the health answer by HTTP."""
    database_url: str | None = None
    """The ledger (a local stack): submission lookups in process, with the health function's own code."""
    endpoint_url: str | None = None
    region: str | None = None
    local_credentials: bool = False
    """The embedded endpoint's fake credentials, so no AWS account is needed (or touched)."""

    def need(self, field: str, purpose: str) -> str:
        """The value of ``field``; TargetError naming the flags that give it when it is unset."""
        value = getattr(self, field)
        if not value:
            raise TargetError(
                f"{purpose} needs {FLAGS[field]} (or --stack NAME, whose output {OUTPUT_KEYS.get(field, field)} "
                f"names it, or --local); target: {self.description}"
            )
        return str(value)

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` at this target (standard retries, bounded timeouts)."""
        import boto3
        from botocore.config import Config

        # S3 at its regional name in us-east-1 too, as the processor's quarantine client (botocore's
        # default there is the global name); other services ignore the setting.
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            s3={"us_east_1_regional_endpoint": "regional"},
        )
        if self.local_credentials:
            session = boto3.session.Session(
                region_name=self.region,
                aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            )
        else:
            session = boto3.session.Session(region_name=self.region or region_from_env())
        return session.client(service, endpoint_url=self.endpoint_url, config=config)  # type: ignore[call-overload]


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the target (every verb takes them)."""
    group = parser.add_argument_group("target (a deployed stack, a running make run, or endpoints one by one)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--stack", metavar="NAME", help="a deployed stack, e.g. TelemetryAdapter-prod (its outputs)")
    where.add_argument("--local", action="store_true", help="the running `make run` (its stack file)")
    group.add_argument(
        "--stack-file", type=Path, default=DEFAULT_PATH, help="the file `make run` writes (with --local)"
    )
    group.add_argument(
        "--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, your AWS configuration's)"
    )
    group.add_argument("--endpoint-url", help="one endpoint for every AWS client (moto, LocalStack)")
    group.add_argument("--queue-url", help="the submissions queue")
    group.add_argument("--dlq-url", help="the dead-letter queue")
    group.add_argument("--bucket", dest="quarantine_bucket", help="the quarantine bucket")
    group.add_argument("--stream", dest="stream_name", help="the events stream")
    group.add_argument("--health-function", help="the health function's name (Lambda Invoke)")
    group.add_argument("--health-url", help="a health endpoint URL (instead of --health-function)")
    group.add_argument("--database-url", help="the ledger, read in process (local stacks only)")


def resolve(args: argparse.Namespace) -> Target:
    """The target the flags describe; TargetError when the stack or the file cannot be read."""
    target = Target()
    if args.local:
        target = local_target(args.stack_file)
    elif args.stack:
        target = stack_target(args.stack, args.region, args.endpoint_url)
    explicit: dict[str, Any] = {
        item.name: getattr(args, item.name)
        for item in fields(Target)
        if item.name in FLAGS and getattr(args, item.name, None)
    }
    return replace(target, **explicit) if explicit else target


def local_target(path: Path) -> Target:
    """The running local stack that wrote ``path``."""
    try:
        stack = read(path)
    except StackFileError as error:
        raise TargetError(str(error)) from None
    if not stack.is_running():
        raise TargetError(
            f"{path} was written by a `make run` that is no longer running (process {stack.pid}, started "
            f"{stack.started_at}): start it again"
        )
    return Target(
        description=f"the local stack of process {stack.pid} ({path})",
        queue_url=stack.queue_url,
        dlq_url=stack.dlq_url,
        quarantine_bucket=stack.quarantine_bucket or None,
        stream_name=stack.stream_name,
        health_url=stack.health_url,
        database_url=stack.database_url or None,
        endpoint_url=stack.aws_endpoint or None,
        region=stack.region,
        local_credentials=True,
    )


def stack_target(name: str, region: str | None, endpoint_url: str | None) -> Target:
    """The deployed stack ``name``, from its CloudFormation outputs."""
    cloudformation = Target(region=region, endpoint_url=endpoint_url).client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except Exception as error:
        raise TargetError(f"cannot read the outputs of stack {name!r}: {_reason(error)}") from None
    outputs = {output["OutputKey"]: output.get("OutputValue") for output in stacks[0].get("Outputs", [])}
    found: dict[str, Any] = {field: outputs.get(key) or None for field, key in OUTPUT_KEYS.items()}
    return replace(Target(description=f"stack {name}", region=region, endpoint_url=endpoint_url), **found)


def _reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        details = response.get("Error", {})
        return f"{details.get('Code', type(error).__name__)}: {details.get('Message', '')}".rstrip(": ")
    return f"{type(error).__name__}: {error}"
