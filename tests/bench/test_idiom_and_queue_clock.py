"""The Powertools idiom behaves as its docs say it does (so the comparison is with the real thing), and the
one-submission case's queue clock skips only the waits SQS would impose."""

from __future__ import annotations

import random
from typing import Any

import boto3

from bench.idiom import build_idiom
from bench.latency import OperationCounter, attach
from bench.long_submission import QueueClock
from bench.stack import create_idempotency_table
from devkit import fleet
from devkit.kinesis import read_stream
from devkit.lambda_shapes import LambdaContext, sqs_event
from tests.conftest import STREAM

TABLE = "bench-idempotency"


def test_idiom_publishes_once_per_submission_and_fails_what_it_cannot_key(kinesis: Any) -> None:
    create_idempotency_table(boto3.client("dynamodb", region_name="us-east-1"))
    idiom = build_idiom(TABLE, kinesis, STREAM)
    counter = OperationCounter()
    attach(idiom.dynamodb, "before-send.dynamodb", counter, "count")
    attach(kinesis, "before-send.kinesis.PutRecords", counter, "count")
    document = fleet.submission(random.Random(3), fleet.device_ids(1)[0])
    body = fleet.encode(document)
    invalid = fleet.encode(fleet.with_defect(fleet.submission(random.Random(4), fleet.device_ids(1)[0]), "bad_ip"))
    # The same submission twice (a sensor's re-send: another SQS message), an invalid one, and a body
    # that is not base64 at all.
    event = sqs_event([body, body, invalid, "%%%"])
    response = idiom.lambda_handler(event, LambdaContext())
    # The idempotency key cannot be read from a body that is not base64 JSON: Powertools raises before
    # the record handler runs, so that message is retried (and ends in the DLQ); the handler drops it.
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][3]["messageId"]}]}
    events = fleet.expected_event_count(document)
    assert [record["sequence"] for record in read_stream(kinesis, STREAM)] == list(range(events))
    # Per new submission: PutItem (lock), PutRecords, UpdateItem (result); the copy stops at its PutItem;
    # the invalid submission gets its own lock and result, and publishes nothing.
    assert counter.calls == {"PutItem": 3, "PutRecords": 1, "UpdateItem": 2}


def test_queue_clock_skips_to_the_end_of_the_visibility_timeout(aws: None) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="clocked", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    clock = QueueClock()
    with clock.installed():
        assert len(sqs.receive_message(QueueUrl=url).get("Messages", [])) == 1
        assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []  # invisible now
        skipped = clock.skip_to_next_visible("clocked")
        again = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"])
        assert again["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "2"
        assert clock.skip_to_next_visible("clocked") > 0  # received again: invisible for another 300 s
    assert 290 < skipped <= 301
    assert clock.skipped > skipped
