"""The ``submissions`` queue the sensors write to, and its dead-letter queue.

Both queues are encrypted at rest (SQS-managed keys: no KMS cost, no key grants for producers) and
refuse plain-HTTP requests. The visibility timeout comes from context, already validated to be at
least six times the function timeout. A message that keeps failing for a transient reason comes
back after growing delays (the processor sets its visibility from the retry schedule) and moves to
the DLQ only after ``maxReceiveCount`` receives, which ``infra/settings.py`` derives from the outage
tolerance; there the DLQ depth alarm pages the operators.

Removal (``infra/lifecycle.py``): the dev stage's queues go with its stack; any other stage keeps both
when the stack is deleted, because they may hold valid submissions nobody has published yet (the
dead-letter queue above all), except after a failed first create.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.lifecycle import kept_unless_dev
from infra.nag import acknowledge
from infra.naming import Names
from infra.settings import DLQ_RETENTION_DAYS, DeploySettings

MAX_MESSAGE_BYTES = 1_048_576
"""Both queues' ``MaximumMessageSize``: 1 MiB, the largest SQS accepts for a message and for a whole
``SendMessageBatch``. Set explicitly, not left to the service default: the processor accepts bodies up
to ``MAX_BODY_BYTES`` (1 MiB by default), the dead-letter queue must take what the queue moves there,
and the processor packs its hand-back calls up to 1 MiB (``handback.MAX_BYTES_PER_CALL``)."""


def encrypted_queue(scope: Construct, construct_id: str, *, name: str, **options: Any) -> sqs.Queue:
    """A queue encrypted with SQS-managed keys that refuses plain-HTTP requests."""
    return sqs.Queue(
        scope, construct_id, queue_name=name, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, **options
    )


class IngestQueues(Construct):
    """The main queue (``queue``) and its dead-letter queue (``dead_letter_queue``)."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings, names: Names) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = encrypted_queue(
            self,
            "DeadLetterQueue",
            name=names.resource("submissions-dlq"),
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            removal_policy=kept_unless_dev(settings),
        )
        acknowledge(
            self.dead_letter_queue,
            ("AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the submissions queue."),
        )
        self.queue = encrypted_queue(
            self,
            "Queue",
            name=names.resource("submissions"),
            visibility_timeout=Duration.seconds(settings.visibility_timeout_seconds),
            retention_period=Duration.days(settings.queue_retention_days),
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            removal_policy=kept_unless_dev(settings),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=settings.max_receive_count
            ),
        )
