"""The ``events`` Kinesis data stream that many consumers read.

On-demand capacity by default (no shard planning; pay per GB), provisioned with a shard count from
context when the traffic is steady enough for that to be cheaper. Encrypted with KMS using the
AWS-managed ``aws/kinesis`` key: consumers of a fan-out stream need no grants on a key of ours, and
there is no per-request KMS charge for producers or consumers.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kinesis as kinesis
from constructs import Construct

from infra.settings import DeploySettings


class EventStream(Construct):
    """The stream (``stream``)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings) -> None:
        super().__init__(scope, construct_id)
        provisioned = settings.stream_mode == "provisioned"
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name="events",
            stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
            shard_count=settings.shard_count if provisioned else None,
            encryption=kinesis.StreamEncryption.MANAGED,
            retention_period=Duration.hours(24),
        )
