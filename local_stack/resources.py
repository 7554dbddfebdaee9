"""The AWS resources of a local run: the ``submissions`` queue with its DLQ and redrive policy, the
``events`` stream and the ``quarantine`` bucket. Created on the embedded endpoint the way the CDK stack
declares them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from local_stack.environment import DLQ_NAME, QUARANTINE_BUCKET_NAME, QUEUE_NAME, STREAM_NAME

STREAM_SHARDS = 4
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class Resources:
    """Where the pipeline's queues, stream and quarantine are."""

    queue_url: str
    dlq_url: str
    stream_name: str
    quarantine_bucket: str = ""
    """Empty when there is none (a worker whose environment names no ``QUARANTINE_BUCKET``)."""


@dataclass(frozen=True)
class QueueDepth:
    """Messages waiting (visible), in flight (received, not yet deleted) and delayed."""

    visible: int
    in_flight: int
    delayed: int = 0

    @property
    def total(self) -> int:
        """Every message still on the queue."""
        return self.visible + self.in_flight + self.delayed


def create_resources(sqs: Any, kinesis: Any, s3: Any, *, visibility_timeout: int, max_receive_count: int) -> Resources:
    """Create the DLQ, the queue redriving into it after ``max_receive_count`` receives, the stream and the
    quarantine bucket."""
    dlq_url = sqs.create_queue(QueueName=DLQ_NAME, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
    queue_url = sqs.create_queue(
        QueueName=QUEUE_NAME,
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    kinesis.create_stream(StreamName=STREAM_NAME, ShardCount=STREAM_SHARDS)
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM_NAME, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    s3.create_bucket(Bucket=QUARANTINE_BUCKET_NAME)
    return Resources(
        queue_url=queue_url, dlq_url=dlq_url, stream_name=STREAM_NAME, quarantine_bucket=QUARANTINE_BUCKET_NAME
    )


def queue_depth(sqs: Any, queue_url: str) -> QueueDepth:
    """The queue's approximate counts, as CloudWatch would show them."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return QueueDepth(
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The queue's ARN (the ``eventSourceARN`` of its Lambda events)."""
    return str(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
