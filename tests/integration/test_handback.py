"""A big submission that makes progress never counts towards the dead-letter queue (guarantee 7).

Order costs one PutRecords call per event of a submission, so a long one needs several invocations.
When the time budget stops a message whose recorded prefix grew, the processor hands a copy of it back
to the queue and acknowledges the original: the copy starts with a fresh receive count. SQS, Kinesis
and the ledger are real (moto, PostgreSQL); the invocations run on a virtual clock each PutRecords
call advances, as a slow stream would.
"""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import pytest

from devkit import fleet
from devkit.kinesis import RecordingKinesis, read_stream
from devkit.lambda_shapes import QUEUE_ARN, LambdaContext, VirtualClock, sqs_record
from devkit.sqs_limits import SQS_MAX_BYTES, SizeLimitedSqs
from processor.handler import handle_batch
from telemetry_adapter.config import PublishSettings, Settings
from telemetry_adapter.handback import HANDED_BACK_FROM, Copy, QueueHandBack
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import OrderedPublisher
from tests.conftest import REGION, STREAM

CALL_SECONDS = 0.2
"""Virtual seconds per PutRecords call: a 60 s invocation with a 13 s margin starts 235 calls."""
CALLS_PER_INVOCATION = 235


class SlowKinesis:
    """Kinesis whose every call takes ``CALL_SECONDS`` of the virtual clock."""

    def __init__(self, client: Any, clock: VirtualClock) -> None:
        self.client = client
        self.clock = clock

    def put_records(self, **kwargs: Any) -> Any:
        self.clock.advance(CALL_SECONDS)
        return self.client.put_records(**kwargs)


@pytest.fixture
def queues(aws: None) -> tuple[Any, str, str]:
    """The submissions queue with a dead-letter queue after two receives, on moto."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="submissions-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    queue = sqs.create_queue(QueueName="submissions", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    return sqs, queue, dlq


def pipeline_with(database_url: str, client: Any, handback: QueueHandBack | None) -> BatchPipeline:
    publish = PublishSettings(safety_margin_ms=13_000, max_concurrency=1)
    settings = Settings(stream_name=STREAM, publish=publish)
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(database_url).connect))
    return BatchPipeline(settings, ledger, OrderedPublisher(client, STREAM, publish), handback=handback)


def receive(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """One receive, as the event source mapping does it, shaped as the records of a Lambda event."""
    answer = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )
    return [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message["Attributes"],
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": QUEUE_ARN,
            "awsRegion": REGION,
        }
        for message in answer.get("Messages", [])
    ]


def settle(sqs: Any, queue_url: str, records: list[dict[str, Any]], response: dict[str, Any]) -> None:
    """Delete what the function acknowledged; make the failures visible again at once."""
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for record in records:
        if record["messageId"] in failed:
            handle = record["receiptHandle"]
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
        else:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])


def long_submission(events: int) -> dict[str, Any]:
    return fleet.submission(random.Random(3), fleet.device_ids(1)[0], processes=events, connections=0)


def test_a_long_submission_completes_across_invocations_without_counting_receives(
    clean_database: str, kinesis: Any, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, dlq = queues
    events = 4 * CALLS_PER_INVOCATION + 60
    document = long_submission(events)
    sqs.send_message(QueueUrl=queue, MessageBody=fleet.encode(document))
    clock = VirtualClock()
    recorder = RecordingKinesis(kinesis)
    pipeline = pipeline_with(clean_database, SlowKinesis(recorder, clock), QueueHandBack(sqs, queue))
    invocations, handed_back = 0, 0
    while records := receive(sqs, queue):
        assert [record["attributes"]["ApproximateReceiveCount"] for record in records] == ["1"]
        invocations += 1
        response = handle_batch({"Records": records}, LambdaContext(timeout_ms=60_000, clock=clock.now), pipeline)
        assert response == {"batchItemFailures": []}
        handed_back += HANDED_BACK_FROM in records[0]["messageAttributes"]
        settle(sqs, queue, records, response)
        assert invocations <= 6
    assert (invocations, handed_back) == (5, 4)
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
    sequences = [record["sequence"] for record in read_stream(kinesis, STREAM)]
    assert sequences == list(range(events))  # each event once, in order: every copy resumed at the prefix
    assert recorder.order_violations() == []


def test_a_copy_sqs_does_not_take_leaves_the_message_failed(
    clean_database: str, kinesis: Any, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, _ = queues
    clock = VirtualClock()
    missing_queue = queue.replace("submissions", "no-such-queue")
    pipeline = pipeline_with(clean_database, SlowKinesis(kinesis, clock), QueueHandBack(sqs, missing_queue))
    record = sqs_record(fleet.encode(long_submission(CALLS_PER_INVOCATION + 10)))
    report = pipeline.process([record], _context_deadline(clock))
    assert report.failed_message_ids == [record["messageId"]]
    assert (report.handed_back, report.events_published) == (0, CALLS_PER_INVOCATION)


def test_no_progress_no_copy(clean_database: str, kinesis: Any, queues: tuple[Any, str, str]) -> None:
    """A message the budget stopped before any of its events went out is an ordinary failure."""
    sqs, queue, _ = queues
    clock = VirtualClock()
    pipeline = pipeline_with(clean_database, SlowKinesis(kinesis, clock), QueueHandBack(sqs, queue))
    record = sqs_record(fleet.encode(long_submission(3)))
    clock_deadline = _context_deadline(clock, timeout_ms=13_500)
    clock.advance(1)  # only 12.5 s left: less than the margin, nothing starts
    report = pipeline.process([record], clock_deadline)
    assert report.failed_message_ids == [record["messageId"]]
    assert report.handed_back == 0
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


class SlowSqs:
    """SQS whose every SendMessageBatch takes ``seconds`` of the virtual clock (inside the client's own
    connect and read timeouts), counted."""

    def __init__(self, client: Any, clock: VirtualClock, seconds: float) -> None:
        self.client = client
        self.clock = clock
        self.seconds = seconds
        self.calls = 0

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls += 1
        self.clock.advance(self.seconds)
        return self.client.send_message_batch(**kwargs)


def test_the_hand_back_of_a_full_batch_stays_inside_the_invocation(
    clean_database: str, kinesis: Any, queues: tuple[Any, str, str]
) -> None:
    """A hundred long messages need ten SendMessageBatch calls: each starts only while one more call
    still fits the budget, and the copies not sent are failures (never acknowledged without a copy)."""
    sqs, queue, _ = queues
    clock = VirtualClock()
    slow_sqs = SlowSqs(sqs, clock, 2.5)
    pipeline = pipeline_with(clean_database, SlowKinesis(kinesis, clock), QueueHandBack(slow_sqs, queue))
    rng = random.Random(3)
    bodies = [
        fleet.encode(fleet.submission(rng, device, processes=60, connections=0)) for device in fleet.device_ids(100)
    ]
    records = [sqs_record(body) for body in bodies]
    context = LambdaContext(timeout_ms=15_000, clock=clock.now)
    response = handle_batch({"Records": records}, context, pipeline)
    assert context.get_remaining_time_in_millis() > 0
    # 2 s of publishing, then 12 s left beyond the 1 s slack: calls start at 12, 9.5, 7 and 4.5 s left.
    assert slow_sqs.calls == 4
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert len(failed) == 60
    copies: list[str] = []
    for _ in range(10):  # bounded: at most 40 copies, ten per receive
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        copies += [m["MessageAttributes"][HANDED_BACK_FROM]["StringValue"] for m in answer.get("Messages", [])]
    acknowledged = {record["messageId"] for record in records} - failed
    assert sorted(copies) == sorted(acknowledged)


def _context_deadline(clock: VirtualClock, timeout_ms: int = 60_000) -> Any:
    from telemetry_adapter.deadline import Deadline

    return Deadline.from_context(
        LambdaContext(timeout_ms=timeout_ms, clock=clock.now), default_ms=timeout_ms, margin_ms=13_000
    )


def test_a_body_that_leaves_no_room_for_the_attribute_is_handed_back_without_it(aws: None) -> None:
    """SQS counts attributes into the 1 MiB (moto does not: ``SizeLimitedSqs`` does, as SQS)."""
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="submissions", Attributes={"MaximumMessageSize": str(SQS_MAX_BYTES)})["QueueUrl"]
    limited = SizeLimitedSqs(sqs)
    full = Copy("m-full", "x" * SQS_MAX_BYTES)  # as large as the processor accepts
    near = Copy("m-near", "y" * (SQS_MAX_BYTES - 20))  # room for 20 bytes; the attribute takes 26
    small = Copy("m-small", "{}")
    taken, errors = QueueHandBack(limited, queue).send([full, near, small])
    assert (taken, errors, limited.refused) == ({"m-full", "m-near", "m-small"}, {}, 0)
    received = []
    for _ in range(10):
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        received.extend(answer.get("Messages", []))
        if len(received) == 3:
            break
    attributes = {message["Body"][:1]: message.get("MessageAttributes", {}) for message in received}
    assert attributes["x"] == {}
    assert attributes["y"] == {}
    assert attributes["{"][HANDED_BACK_FROM]["StringValue"] == "m-small"
