"""The log lines an on-call engineer searches: one per message that was rejected or not acknowledged,
with its message id, its sender, and its submission and device ids whenever they were parsed; a message
that is not acknowledged also says why, in a stable code, with the last error it met."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from typing import Any

import pytest

from devkit import fleet
from devkit.kinesis import FlakyKinesis
from devkit.lambda_shapes import sqs_event
from telemetry_adapter.config import PublishSettings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from telemetry_adapter.message_log import MessageIdentity, log_rejection
from telemetry_adapter.observability import logger
from telemetry_adapter.rejections import Reason
from telemetry_adapter.submission import parse_submission
from tests.conftest import FAST_RETRIES, make_pipeline
from tests.integration.test_guarantees import documents

SENDER = "AIDAEXAMPLE"  # the SenderId of every record devkit builds


def lines(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == message]


def fields(record: logging.LogRecord, *names: str) -> tuple[Any, ...]:
    return tuple(getattr(record, name, None) for name in names)


def test_a_rejection_names_the_message_its_sender_and_what_was_parsed(
    clean_database: str, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    valid = documents(1)[0]
    bad_ip = fleet.with_defect(valid, "bad_ip")
    bad_id = fleet.with_defect(valid, "bad_uuid")
    event = sqs_event([fleet.encode(bad_ip), fleet.encode(bad_id), fleet.hostile_body("not_json")])
    pipeline = make_pipeline(clean_database, kinesis)
    caplog.set_level(logging.WARNING)
    report = pipeline.process(event["Records"], Deadline(60_000, FAST_RETRIES.safety_margin_ms))
    assert report.failed_message_ids == []
    rejected = lines(caplog, "submission rejected")
    ids = [record["messageId"] for record in event["Records"]]
    names = ("message_id", "sender_id", "submission_id", "device_id", "reason", "field")
    assert [fields(record, *names) for record in rejected] == [
        (ids[0], SENDER, valid["submission_id"], valid["device_id"], "invalid_ip", "source_ip"),
        (ids[1], SENDER, None, valid["device_id"], "invalid_uuid", "submission_id"),
        (ids[2], SENDER, None, None, "not_json", "body"),
    ]


def test_each_message_not_acknowledged_is_logged_once_with_why_and_the_last_error(
    clean_database: str, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    docs = documents(3)
    leased = parse_submission(fleet.encode(docs[2]), make_pipeline(clean_database, kinesis).settings.limits)
    other = Ledger(ConnectionProvider(DatabaseSettings.from_url(clean_database).connect))
    request = ClaimRequest(leased.submission_id, leased.device_id, leased.digest, len(leased.events))
    other.claim([request], owner="a-live-worker", lease_seconds=600)
    throttled = FlakyKinesis(kinesis, record_failure_rate=1.0, seed=4)
    publish = PublishSettings(max_attempts=2, backoff_base_ms=0, backoff_cap_ms=0, safety_margin_ms=1_000)
    pipeline = make_pipeline(clean_database, throttled, publish=publish)
    event = sqs_event([fleet.encode(docs[0]), fleet.encode(docs[1]), fleet.encode(docs[2]), fleet.encode(docs[0])])
    caplog.set_level(logging.WARNING)
    report = pipeline.process(event["Records"], Deadline(60_000, publish.safety_margin_ms))
    assert len(report.failed_message_ids) == 4
    failed = lines(caplog, "message not acknowledged")
    assert Counter(record.message_id for record in failed) == Counter(report.failed_message_ids)  # type: ignore[attr-defined]
    by_message = {record.message_id: record for record in failed}  # type: ignore[attr-defined]
    first = by_message[event["Records"][0]["messageId"]]
    assert fields(first, "submission_id", "device_id", "sender_id", "failure", "published", "events") == (
        docs[0]["submission_id"],
        docs[0]["device_id"],
        SENDER,
        "gave_up",
        0,
        fleet.expected_event_count(docs[0]),
    )
    assert first.last_error in {"ProvisionedThroughputExceededException", "InternalFailure"}  # type: ignore[attr-defined]
    assert fields(by_message[event["Records"][2]["messageId"]], "failure", "submission_id") == (
        "busy",
        docs[2]["submission_id"],
    )
    assert by_message[event["Records"][3]["messageId"]].failure == "gave_up"  # type: ignore[attr-defined]


def test_a_ledger_failure_names_the_exception_class(kinesis: Any, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = make_pipeline("postgresql://postgres@127.0.0.1:9/none", kinesis)
    event = sqs_event([fleet.encode(documents(1)[0])])
    caplog.set_level(logging.WARNING)
    pipeline.process(event["Records"], Deadline(60_000, FAST_RETRIES.safety_margin_ms))
    (line,) = lines(caplog, "message not acknowledged")
    assert fields(line, "message_id", "failure", "last_error") == (
        event["Records"][0]["messageId"],
        "ledger_failed",
        "InterfaceError",
    )


def test_a_deadline_stop_is_logged_as_such(clean_database: str, kinesis: Any, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = make_pipeline(clean_database, kinesis)
    event = sqs_event([fleet.encode(documents(1)[0])])
    caplog.set_level(logging.WARNING)
    pipeline.process(event["Records"], Deadline(500, FAST_RETRIES.safety_margin_ms))
    (line,) = lines(caplog, "message not acknowledged")
    assert fields(line, "failure", "last_error") == ("deadline", "BudgetExhausted")


def test_a_rejected_line_has_every_id_field_null_when_it_was_not_parsed() -> None:
    """The JSON line itself (Powertools drops keys whose value is None): a stable schema for queries."""
    buffer = io.StringIO()
    handler: Any = logger.registered_handler
    previous = handler.setStream(buffer)
    try:
        log_rejection(MessageIdentity("m-1", SENDER), Reason.NOT_JSON, "body")
        logger.info("a line about no message")
    finally:
        handler.setStream(previous)
    rejected, other = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert set(MessageIdentity("m-1").fields()) <= set(rejected)
    assert (rejected["message_id"], rejected["sender_id"]) == ("m-1", SENDER)
    assert rejected["submission_id"] is None
    assert rejected["device_id"] is None
    assert (rejected["reason"], rejected["field"]) == ("not_json", "body")
    assert "submission_id" not in other
