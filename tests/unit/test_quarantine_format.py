"""The quarantine's object format: lossless round trip of any body, keys listable by hour, tolerant reads."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from devkit.lambda_shapes import sqs_record
from telemetry_adapter.message_log import MessageIdentity
from telemetry_adapter.quarantine import Rejection
from telemetry_adapter.quarantine_format import (
    REPLAYED_FROM,
    REPLAYED_MESSAGE_ID,
    QuarantinedMessage,
    decode,
    encode,
    hour_prefix,
    object_key,
)
from telemetry_adapter.rejections import Reason


def message(body: str, **overrides: object) -> QuarantinedMessage:
    values: dict[str, object] = {
        "message_id": "m-1",
        "body": body,
        "reason": "unknown_event_type",
        "field": "events",
        "quarantined_at": "2026-11-29T03:00:00.000000Z",
        "sender_id": "AIDAEXAMPLE",
        "submission_id": "5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f",
    }
    values.update(overrides)
    return QuarantinedMessage(**values)  # type: ignore[arg-type]


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_any_body_comes_back_unchanged(bodies: list[str]) -> None:
    originals = [message(body, message_id=f"m-{n}") for n, body in enumerate(bodies)]
    assert list(decode(encode(originals))) == originals


def test_a_newer_writers_unknown_fields_are_ignored() -> None:
    line = json.dumps({**json.loads(gzip.decompress(encode([message("x")]))), "added_later": 1})
    assert list(decode(gzip.compress(line.encode()))) == [message("x")]


def test_keys_start_with_the_utc_hour_and_sort_by_time() -> None:
    moment = datetime(2026, 11, 29, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=1)))
    key = object_key(moment, "b1")
    assert key == "rejected/2026/11/29/03/20261129T030506000007Z-b1.jsonl.gz"
    assert key.startswith(hour_prefix(moment))
    assert object_key(moment, "b1") < object_key(moment + timedelta(microseconds=1), "a0")
    assert hour_prefix(datetime(2026, 1, 2, 3, tzinfo=UTC)) == "rejected/2026/01/02/03/"


def test_a_replayed_message_keeps_where_it_came_from_and_older_records_read_without() -> None:
    record = sqs_record("{", message_id="m-2")
    record["messageAttributes"] = {
        REPLAYED_FROM: {"stringValue": "s3://quarantine/rejected/a", "dataType": "String"},
        REPLAYED_MESSAGE_ID: {"stringValue": "m-1", "dataType": "String"},
    }
    kept = Rejection(MessageIdentity.of(record), Reason.NOT_JSON, "body", record).quarantined("2026-11-29T03:00:00Z")
    (read,) = decode(encode([kept]))
    assert (read.replayed_from, read.replayed_message_id, read.original_id) == (
        "s3://quarantine/rejected/a",
        "m-1",
        "m-1",
    )
    older = {"message_id": "m-0", "body": "{", "reason": "not_json", "field": "body", "quarantined_at": "x"}
    (old,) = decode(gzip.compress((json.dumps(older) + "\n").encode()))
    assert (old.replayed_from, old.replayed_message_id, old.original_id) == (None, None, "m-0")
