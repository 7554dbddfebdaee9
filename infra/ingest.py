"""The ``submissions`` queue the sensors write to, and its dead-letter queue.

Both queues are encrypted at rest (SQS-managed keys: no KMS cost, no key grants for producers) and
refuse plain-HTTP requests. The visibility timeout comes from context, already validated to be at
least six times the function timeout, and a message that keeps failing moves to the DLQ after
``maxReceiveCount`` receives, where the DLQ depth alarm pages the operators.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge
from infra.settings import DeploySettings

DLQ_RETENTION = Duration.days(14)


class IngestQueues(Construct):
    """The main queue (``queue``) and its dead-letter queue (``dead_letter_queue``)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name="submissions-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        acknowledge(
            self.dead_letter_queue, ("AwsSolutions-SQS3", "This queue is the dead-letter queue of 'submissions'.")
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name="submissions",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(settings.visibility_timeout_seconds),
            retention_period=Duration.days(settings.queue_retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=settings.max_receive_count
            ),
        )
