"""The events Kinesis data stream that many consumers read.

On-demand capacity by default (no shard planning; pay per GB), provisioned with a shard count from
context when the traffic is steady enough for that to be cheaper. Encrypted with KMS using the
AWS-managed ``aws/kinesis`` key: consumers of a fan-out stream need no grants on a key of ours, and
there is no per-request KMS charge for producers or consumers.

Removal (``infra/lifecycle.py``): the dev stage's stream goes with its stack; any other stage's is
kept when the stack is deleted (consumers may still be reading it), except after a failed first create.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kinesis as kinesis
from constructs import Construct

from infra.lifecycle import kept_unless_dev
from infra.naming import Names
from infra.settings import DeploySettings


class EventStream(Construct):
    """The stream (``stream``)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings, names: Names) -> None:
        super().__init__(scope, construct_id)
        provisioned = settings.stream_mode == "provisioned"
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name=names.resource("events"),
            stream_mode=kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND,
            shard_count=settings.shard_count if provisioned else None,
            encryption=kinesis.StreamEncryption.MANAGED,
            retention_period=Duration.hours(settings.stream_retention_hours),
            removal_policy=kept_unless_dev(settings),
        )
