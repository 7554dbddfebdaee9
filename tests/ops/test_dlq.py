"""``dlq peek`` and ``dlq redrive`` against the local stack: decoded, nothing deleted by a peek, expiry from
the original send, moved only once copied, paced, and refused while the stack's health is failing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from devkit import fleet
from local_stack.resources import queue_depth
from ops.dlq import REDRIVEN_FROM
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from tests.ops.conftest import LocalStack, Outcome, valid_document

pytestmark = pytest.mark.timeout(120)
RECEIVE_LIMIT = 20


def dead_letter_by_redrive_policy(local: LocalStack, body: str) -> None:
    """Send ``body`` to the submissions queue and receive it until SQS moves it to the DLQ (max receives 1)."""
    sqs = local.client("sqs")
    sqs.send_message(QueueUrl=local.queue_url, MessageBody=body)
    for _ in range(RECEIVE_LIMIT):
        sqs.receive_message(QueueUrl=local.queue_url, VisibilityTimeout=0, WaitTimeSeconds=0)
        if queue_depth(sqs, local.dlq_url).visible >= 1 and queue_depth(sqs, local.queue_url).total == 0:
            return
    raise AssertionError("SQS never moved the message to the dead-letter queue")


def test_peek_decodes_counts_and_deletes_nothing(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    document = valid_document(1, events=3)
    dead_letter_by_redrive_policy(local, fleet.encode(document))
    sqs = local.client("sqs")
    for garbage in (fleet.hostile_body("not_base64"), fleet.hostile_body("deep"), "\u0000\ud7ff", "[]"):
        sqs.send_message(QueueUrl=local.dlq_url, MessageBody=garbage)

    result = run_ops("dlq", "peek", "--json")
    assert result.status == 0, result.err
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert len(rows) == 5
    (valid,) = [row for row in rows if row["verdict"] == "valid"]
    assert valid["submission_id"] == document["submission_id"]
    assert valid["device_id"] == document["device_id"]
    assert valid["event_count"] == 3
    assert valid["receive_count"] >= 2  # the receives in the submissions queue, and the peek's own
    assert valid["sender_id"]  # the SenderId system attribute: the principal that sent it
    assert all(row["sender_id"] == valid["sender_id"] for row in rows)
    assert valid["first_received_at"] is not None
    assert datetime.fromisoformat(valid["sent_at"]) <= datetime.fromisoformat(valid["first_received_at"])
    expires = datetime.fromisoformat(valid["expires_at"])
    sent = datetime.fromisoformat(valid["sent_at"])
    assert expires - sent == timedelta(days=14)  # a retention after the ORIGINAL send
    assert 0 <= valid["age_seconds"] <= valid["age_seconds"] + valid["seconds_left"] <= 14 * 86_400
    assert {row["verdict"] for row in rows} - {"valid"} <= {"not_base64", "too_deep", "not_utf8", "not_json"}
    # Nothing deleted, and everything visible again at once (no wait for a visibility timeout).
    assert queue_depth(sqs, local.dlq_url).visible == 5
    saved = run_ops("dlq", "peek", "--json", "--bodies")
    assert fleet.encode(document) in [json.loads(line)["body"] for line in saved.out.splitlines()]
    again = run_ops("dlq", "peek")
    assert again.status == 0, again.err
    assert again.out.startswith("5 of about 5 messages in submissions-dlq (none deleted, all visible again)")
    assert document["submission_id"] in again.out
    assert f"sender {valid['sender_id']}" in again.out


def test_redrive_dry_run_moves_nothing(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    sqs = local.client("sqs")
    for seed in range(3):
        sqs.send_message(QueueUrl=local.dlq_url, MessageBody=fleet.encode(valid_document(seed)))
    result = run_ops("dlq", "redrive", "--dry-run")
    assert result.status == 0, result.err
    assert "dry run: would move 3 messages" in result.out
    assert queue_depth(sqs, local.dlq_url).visible == 3
    assert queue_depth(sqs, local.queue_url).total == 0


def test_redrive_moves_every_message_back_unchanged(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    sqs = local.client("sqs")
    bodies = {fleet.encode(valid_document(seed)) for seed in range(23)}
    for body in bodies:
        sqs.send_message(
            QueueUrl=local.dlq_url,
            MessageBody=body,
            MessageAttributes={"HandedBackFrom": {"DataType": "String", "StringValue": "m-0"}},
        )
    result = run_ops("dlq", "redrive", "--rate", "1000")
    assert result.status == 0, result.err
    assert "moved 23 messages" in result.out
    assert queue_depth(sqs, local.dlq_url).total == 0
    moved = []
    for _ in range(RECEIVE_LIMIT):
        batch = sqs.receive_message(
            QueueUrl=local.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        moved.extend(batch)
        if len(moved) >= len(bodies):
            break
    assert {message["Body"] for message in moved} == bodies
    for message in moved:
        attributes = message["MessageAttributes"]
        assert attributes["HandedBackFrom"]["StringValue"] == "m-0"  # the original attributes are kept
        assert attributes[REDRIVEN_FROM]["DataType"] == "String"


def test_redrive_stops_at_the_limit(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    sqs = local.client("sqs")
    for seed in range(5):
        sqs.send_message(QueueUrl=local.dlq_url, MessageBody=fleet.encode(valid_document(seed)))
    result = run_ops("dlq", "redrive", "--limit", "2", "--rate", "1000")
    assert result.status == 0, result.err
    assert queue_depth(sqs, local.queue_url).visible == 2
    assert queue_depth(sqs, local.dlq_url).visible == 3


def test_redrive_is_refused_while_health_is_failing_unless_forced(
    local: LocalStack, run_ops: Callable[..., Outcome]
) -> None:
    sqs = local.client("sqs")
    sqs.send_message(QueueUrl=local.dlq_url, MessageBody=fleet.encode(valid_document(1)))
    local.client("kinesis").delete_stream(StreamName=local.stack.resources.stream_name)  # "stream" check fails

    refused = run_ops("dlq", "redrive")
    assert refused.status == 1
    assert "refused: the health answer is failing (checks: stream)" in refused.err
    assert queue_depth(sqs, local.dlq_url).visible == 1
    assert queue_depth(sqs, local.queue_url).total == 0
    dry = run_ops("dlq", "redrive", "--dry-run")
    assert dry.status == 1
    assert "refused" in dry.err

    forced = run_ops("dlq", "redrive", "--force")
    assert forced.status == 0, forced.err
    assert queue_depth(sqs, local.queue_url).visible == 1
    assert queue_depth(sqs, local.dlq_url).total == 0


def test_a_copy_sqs_refuses_leaves_its_message_in_the_dlq(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    sqs = local.client("sqs")
    sqs.send_message(QueueUrl=local.dlq_url, MessageBody=fleet.encode(valid_document(1)))
    missing_queue = local.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    result = run_ops("dlq", "redrive", "--force", "--queue-url", missing_queue)
    assert result.status == 1
    assert "not moved (still in the dead-letter queue)" in result.err
    assert queue_depth(sqs, local.dlq_url).visible == 1  # not deleted, and visible again at once


def test_redrive_is_refused_while_a_circuit_breaker_is_open_unless_forced(
    local: LocalStack, run_ops: Callable[..., Outcome]
) -> None:
    """A Kinesis outage leaves the health answer only degraded; the open breaker says the messages would
    fail again."""
    sqs = local.client("sqs")
    sqs.send_message(QueueUrl=local.dlq_url, MessageBody=fleet.encode(valid_document(1)))
    assert local.stack.database_url
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(local.stack.database_url).connect))
    try:  # a processor whose breaker Kinesis opened writes it with its heartbeat
        ledger.record_heartbeat(worker="worker-kinesis-down", batch_size=1, breaker="open")
    finally:
        ledger.close()

    refused = run_ops("dlq", "redrive")
    assert refused.status == 1
    assert "refused: 1 processors report an open circuit breaker" in refused.err
    assert queue_depth(sqs, local.dlq_url).visible == 1
    assert queue_depth(sqs, local.queue_url).total == 0

    forced = run_ops("dlq", "redrive", "--force")
    assert forced.status == 0, forced.err
    assert queue_depth(sqs, local.queue_url).visible == 1
