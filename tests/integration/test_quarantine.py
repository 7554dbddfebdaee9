"""Rejected messages are kept in the quarantine, one S3 object per batch, and acknowledged only once
stored (guarantee 5). S3 is moto, the ledger PostgreSQL, Kinesis moto; faults are injected at the S3
boundary (a client that raises, a bucket that does not exist)."""

from __future__ import annotations

import base64
import json
import logging
import random
import uuid
from collections import Counter
from typing import Any

import boto3
import pytest

from devkit import fleet
from devkit.kinesis import read_stream
from devkit.lambda_shapes import VirtualClock, sqs_record
from ops.quarantine import Filters, find, object_keys, read_object
from telemetry_adapter.config import Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import OrderedPublisher
from telemetry_adapter.quarantine import SERVER_SIDE_ENCRYPTION, QuarantineStore
from telemetry_adapter.quarantine_format import CONTENT_ENCODING, KEY_PREFIX, QuarantinedMessage
from tests.conftest import FAST_RETRIES, REGION, STREAM

BUCKET = "quarantine"
DEADLINE_MS = 60_000


class CountingS3:
    """An S3 client that counts ``put_object`` calls and, when told to, fails them (the boundary)."""

    def __init__(self, client: Any, *, error: Exception | None = None) -> None:
        self.client = client
        self.error = error
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> Any:
        self.puts.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.client.put_object(**kwargs)


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


def pipeline_with(database_url: str, kinesis: Any, store: QuarantineStore | None) -> BatchPipeline:
    settings = Settings(stream_name=STREAM, publish=FAST_RETRIES)
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(database_url).connect))
    return BatchPipeline(settings, ledger, OrderedPublisher(kinesis, STREAM, settings.publish), quarantine=store)


def deadline(remaining_ms: float = DEADLINE_MS, clock: VirtualClock | None = None) -> Deadline:
    margin = FAST_RETRIES.safety_margin_ms
    return Deadline(remaining_ms, margin, clock=clock.now) if clock else Deadline(remaining_ms, margin)


def stored(s3: Any) -> dict[str, list[QuarantinedMessage]]:
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {key: read_object(s3, BUCKET, key) for key in keys}


def valid_body(seed: int) -> tuple[str, dict[str, Any]]:
    document = fleet.submission(random.Random(seed), fleet.device_ids(1, seed)[0])
    return fleet.encode(document), document


# Odd bodies, each invalid for a different reason, kept exactly as they came: SQS itself takes any
# Unicode but NUL, lone surrogates and a few controls; the writer keeps those too, should an event
# (a test, a replay tool, a future event source) ever carry them.
ODD_BODIES = {
    "nul": '{"submission_id": "x\u0000"}',
    "surrogate": '{"a": "\ud800"}',
    "latin": "caf\u00e9 \u2028 \x85 not base64 at all \U0001f600",
    "hostile": fleet.hostile_body("not_json"),
}


def test_one_object_per_batch_keeps_every_rejected_body_byte_exact_with_its_context(
    clean_database: str, kinesis: Any, s3: Any
) -> None:
    counting = CountingS3(s3)
    pipeline = pipeline_with(clean_database, kinesis, QuarantineStore(counting, BUCKET))
    body, document = valid_body(1)
    bad_ip = fleet.encode(fleet.with_defect(document, "bad_ip") | {"submission_id": str(uuid.uuid4())})
    records = [
        sqs_record(body),
        *(sqs_record(odd, receive_count=3) for odd in ODD_BODIES.values()),
        sqs_record(bad_ip),
    ]

    report = pipeline.process(records, deadline())

    assert report.failed_message_ids == []
    assert len(counting.puts) == 1
    (put,) = counting.puts
    assert put["ServerSideEncryption"] == SERVER_SIDE_ENCRYPTION
    assert put["ContentEncoding"] == CONTENT_ENCODING
    ((key, messages),) = stored(s3).items()
    assert key.startswith(KEY_PREFIX)
    by_id = {message.message_id: message for message in messages}
    rejected_records = records[1:]
    assert list(by_id) == [record["messageId"] for record in rejected_records]
    for record in rejected_records:
        message = by_id[record["messageId"]]
        assert message.body == record["body"]
        assert message.body.encode("utf-8", "surrogatepass") == record["body"].encode("utf-8", "surrogatepass")
        assert message.sender_id == "AIDAEXAMPLE"
        assert message.sent_at is not None
        assert message.sent_at.endswith("Z")
        assert message.quarantined_at.endswith("Z")
    assert [by_id[r["messageId"]].receive_count for r in rejected_records] == [3, 3, 3, 3, 1]
    assert Counter(message.reason for message in messages) == report.rejected
    assert sum(report.quarantined.values()) == len(messages) == 5
    broken = by_id[records[-1]["messageId"]]
    assert (broken.reason, broken.field) == ("invalid_ip", "source_ip")
    parsed = json.loads(base64.b64decode(bad_ip))
    assert (broken.submission_id, broken.device_id) == (parsed["submission_id"], parsed["device_id"])
    assert {r["submission_id"] for r in read_stream(kinesis, STREAM)} == {document["submission_id"]}
    pipeline.publisher.close()


def test_an_object_written_is_what_the_operators_reader_finds(clean_database: str, kinesis: Any, s3: Any) -> None:
    pipeline = pipeline_with(clean_database, kinesis, QuarantineStore(s3, BUCKET))
    records = [sqs_record(body) for body in ODD_BODIES.values()]
    pipeline.process(records, deadline())
    pipeline.publisher.close()

    everything = Filters(since=_hours_ago(1), until=_hours_ago(-1))
    keys = list(object_keys(s3, BUCKET, everything.since, everything.until))
    found = list(find(s3, BUCKET, everything, limit=100))
    assert len(keys) == 1
    assert [item.message.body for item in found] == [record["body"] for record in records]
    only_json = Filters(since=everything.since, until=everything.until, reasons=frozenset({"not_json"}))
    assert {item.message.reason for item in find(s3, BUCKET, only_json, limit=100)} == {"not_json"}


def test_without_a_store_rejections_are_counted_and_acknowledged(clean_database: str, kinesis: Any, s3: Any) -> None:
    pipeline = pipeline_with(clean_database, kinesis, None)
    report = pipeline.process([sqs_record(body) for body in ODD_BODIES.values()], deadline())
    pipeline.publisher.close()
    assert report.failed_message_ids == []
    assert sum(report.rejected.values()) == len(ODD_BODIES)
    assert report.quarantined == Counter()
    assert stored(s3) == {}


def test_a_batch_without_rejections_makes_no_s3_call(clean_database: str, kinesis: Any, s3: Any) -> None:
    counting = CountingS3(s3)
    pipeline = pipeline_with(clean_database, kinesis, QuarantineStore(counting, BUCKET))
    body, _ = valid_body(2)
    report = pipeline.process([sqs_record(body), sqs_record(body), sqs_record(valid_body(3)[0])], deadline())
    pipeline.publisher.close()
    assert report.failed_message_ids == []
    assert counting.puts == []


@pytest.mark.parametrize("failure", ["client raises", "no such bucket"])
def test_a_failed_write_leaves_the_rejected_messages_on_the_queue_and_their_neighbours_unaffected(
    clean_database: str, kinesis: Any, s3: Any, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    if failure == "client raises":
        store = QuarantineStore(CountingS3(s3, error=ConnectionError("S3 unreachable")), BUCKET)
        expected_error = "ConnectionError"
    else:
        store = QuarantineStore(s3, "no-such-bucket")
        expected_error = "NoSuchBucket"
    pipeline = pipeline_with(clean_database, kinesis, store)
    body, document = valid_body(4)
    records = [sqs_record(body), sqs_record(ODD_BODIES["hostile"]), sqs_record(ODD_BODIES["nul"])]

    with caplog.at_level(logging.WARNING):
        report = pipeline.process(records, deadline())
    pipeline.publisher.close()

    assert report.failed_message_ids == [records[1]["messageId"], records[2]["messageId"]]
    assert report.quarantine_failed
    assert report.quarantine_error == expected_error
    assert report.submissions_completed == 1  # the valid neighbour is published and acknowledged
    assert {r["submission_id"] for r in read_stream(kinesis, STREAM)} == {document["submission_id"]}
    failures = [r for r in caplog.records if getattr(r, "failure", None) == "quarantine_failed"]
    assert sorted(r.message_id for r in failures) == sorted(r["messageId"] for r in records[1:])  # type: ignore[attr-defined]
    assert {r.last_error for r in failures} == {expected_error}  # type: ignore[attr-defined]


def test_no_time_for_the_write_leaves_the_rejected_messages_on_the_queue_without_a_call(
    clean_database: str, kinesis: Any, s3: Any
) -> None:
    counting = CountingS3(s3)
    pipeline = pipeline_with(clean_database, kinesis, QuarantineStore(counting, BUCKET, call_seconds=7.0))
    records = [sqs_record(ODD_BODIES["hostile"])]
    report = pipeline.process(records, deadline(remaining_ms=5_000))
    pipeline.publisher.close()
    assert counting.puts == []
    assert report.failed_message_ids == [records[0]["messageId"]]
    assert report.quarantine_error == "BudgetExhausted"


def test_rejections_are_stored_on_every_early_return(clean_database: str, kinesis: Any, s3: Any) -> None:
    """No primaries, a claim the budget skipped, an unreachable ledger: the rejected still get stored."""
    body, _ = valid_body(5)
    store = QuarantineStore(s3, BUCKET, call_seconds=0.05)

    only_rejects = pipeline_with(clean_database, kinesis, store)
    report = only_rejects.process([sqs_record(ODD_BODIES["hostile"])], deadline())
    assert (report.failed_message_ids, sum(report.quarantined.values())) == ([], 1)

    clock = VirtualClock()
    skipped = [sqs_record(body), sqs_record(ODD_BODIES["latin"])]
    report = only_rejects.process(skipped, deadline(remaining_ms=FAST_RETRIES.safety_margin_ms - 100, clock=clock))
    assert report.claim_skipped
    assert report.failed_message_ids == [skipped[0]["messageId"]]
    assert sum(report.quarantined.values()) == 1
    only_rejects.publisher.close()

    unreachable = pipeline_with("postgresql://postgres@127.0.0.1:1/postgres", kinesis, store)
    broken_ledger = [sqs_record(body), sqs_record(ODD_BODIES["nul"])]
    report = unreachable.process(broken_ledger, deadline())
    unreachable.publisher.close()
    assert report.ledger_failed
    assert report.failed_message_ids == [broken_ledger[0]["messageId"]]
    assert sum(report.quarantined.values()) == 1
    assert sum(len(messages) for messages in stored(s3).values()) == 3


def test_a_conflicting_duplicate_is_quarantined_too(clean_database: str, kinesis: Any, s3: Any) -> None:
    pipeline = pipeline_with(clean_database, kinesis, QuarantineStore(s3, BUCKET))
    body, document = valid_body(6)
    assert pipeline.process([sqs_record(body)], deadline()).failed_message_ids == []
    other = json.loads(json.dumps(document))
    other["events"]["new_process"].append({"cmdl": "evil.exe", "user": "mallory"})
    conflicting = fleet.encode(other)
    records = [sqs_record(conflicting), sqs_record(conflicting)]  # the second follows the first's fate

    report = pipeline.process(records, deadline())
    pipeline.publisher.close()

    assert report.failed_message_ids == []
    ((_, messages),) = stored(s3).items()
    assert [(m.reason, m.field, m.body, m.submission_id) for m in messages] == [
        ("conflicting_duplicate", "content", conflicting, document["submission_id"])
    ] * 2


def _hours_ago(hours: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=hours)
