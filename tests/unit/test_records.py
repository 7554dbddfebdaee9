"""Event records: deterministic ids, sequence, timestamps, and the shipped JSON Schemas."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from devkit import fleet
from telemetry_adapter.config import ConfigurationError, Limits, Settings
from telemetry_adapter.records import (
    MAX_RECORD_BYTES,
    build_records,
    event_id,
    processing_timestamp,
    worst_case_record_bytes,
)
from telemetry_adapter.submission import parse_submission

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    rng = random.Random(11)
    devices = fleet.device_ids(3)
    return [fleet.submission(rng, devices[i % 3]) for i in range(25)]


def test_records_match_the_event_schema(documents: list[dict[str, Any]]) -> None:
    check = validator("event-record.schema.json")
    for document in documents:
        submission = parse_submission(fleet.encode(document), Limits())
        for record in build_records(submission, 0, processing_timestamp()):
            check.validate(json.loads(record.data))


def test_fleet_submissions_match_the_submission_schema(documents: list[dict[str, Any]]) -> None:
    check = validator("submission.schema.json")
    for document in documents:
        check.validate(document)


def test_schema_rejects_a_wrong_record() -> None:
    check = validator("event-record.schema.json")
    submission = parse_submission(fleet.encode(fleet.submission(random.Random(1), fleet.device_ids(1)[0])), Limits())
    record = json.loads(build_records(submission, 0, processing_timestamp())[0].data)
    record["event_details"] = {"cmdl": "x"} if record["event_type"] == "new_process" else {"source_ip": "nope"}
    assert list(check.iter_errors(record))


def test_record_fields_sequence_and_ids(documents: list[dict[str, Any]]) -> None:
    document = documents[0]
    submission = parse_submission(fleet.encode(document), Limits())
    records = [json.loads(r.data) for r in build_records(submission, 0, "2026-11-28T12:22:05.123456Z")]
    assert [r["sequence"] for r in records] == list(range(fleet.expected_event_count(document)))
    assert [r["event_type"] for r in records] == (
        ["new_process"] * len(document["events"]["new_process"])
        + ["network_connection"] * len(document["events"]["network_connection"])
    )
    assert all(r["submission_id"] == document["submission_id"] for r in records)
    assert all(r["processing_timestamp"] == "2026-11-28T12:22:05.123456Z" for r in records)
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    assert (
        ids[2] == str(uuid.uuid5(uuid.UUID(document["submission_id"]), "2")) == event_id(document["submission_id"], 2)
    )
    assert records[0]["event_details"] == document["events"]["new_process"][0]


def test_resumed_records_start_at_the_published_prefix_with_the_same_ids(documents: list[dict[str, Any]]) -> None:
    submission = parse_submission(fleet.encode(documents[1]), Limits())
    full = [json.loads(r.data) for r in build_records(submission, 0, processing_timestamp())]
    resumed = [json.loads(r.data) for r in build_records(submission, 3, processing_timestamp())]
    assert [r["id"] for r in resumed] == [r["id"] for r in full[3:]]
    assert resumed[0]["sequence"] == 3


def test_partition_key_is_the_device() -> None:
    document = fleet.submission(random.Random(2), "154ef306-c788-4934-9489-118173e4ea1a")
    records = build_records(parse_submission(fleet.encode(document), Limits()), 0, processing_timestamp())
    assert {record.partition_key for record in records} == {"154ef306-c788-4934-9489-118173e4ea1a"}


def test_non_ascii_details_round_trip_as_utf8() -> None:
    document = fleet.submission(random.Random(3), fleet.device_ids(1)[0], processes=1, connections=0)
    document["events"]["new_process"][0] = {"cmdl": 'C:\\Prog "x"\t\u00e9\U0001f600', "user": "M\u00e1ria"}
    record = build_records(parse_submission(fleet.encode(document), Limits()), 0, processing_timestamp())[0]
    assert json.loads(record.data.decode("utf-8"))["event_details"] == document["events"]["new_process"][0]


def test_schema_allows_additive_evolution_within_a_version() -> None:
    check = validator("event-record.schema.json")
    submission = parse_submission(fleet.encode(fleet.submission(random.Random(4), fleet.device_ids(1)[0])), Limits())
    record = json.loads(build_records(submission, 0, processing_timestamp())[0].data)
    assert record["schema_version"] == 1
    later = {**record, "a_field_added_later": {"any": "thing"}}
    later["event_details"] = {**record["event_details"], "a_detail_added_later": 7}
    assert list(check.iter_errors(later)) == []
    assert list(check.iter_errors({**record, "event_type": "an_event_type_added_later", "event_details": {}})) == []
    assert list(check.iter_errors({**record, "schema_version": 2}))  # a breaking change is another version
    assert list(check.iter_errors({key: value for key, value in record.items() if key != "schema_version"}))


def test_limits_that_allow_a_record_kinesis_would_refuse_fail_at_start_up() -> None:
    assert worst_case_record_bytes(Limits()) <= MAX_RECORD_BYTES
    long_strings = {"STREAM_NAME": "s", "MAX_CMDL_CHARS": "250000", "MAX_STRING_CHARS": "200000"}
    with pytest.raises(ConfigurationError, match="MAX_CMDL_CHARS and MAX_STRING_CHARS"):
        Settings.from_env(long_strings)
    # A body limit that keeps every record small enough makes long strings acceptable again.
    Settings.from_env({**long_strings, "MAX_BODY_BYTES": "524288"})


def test_the_worst_case_record_size_bounds_the_largest_record_the_limits_allow() -> None:
    limits = Limits(max_cmdl_chars=1_000, max_string_chars=100)
    widest = "\U0001f600"  # four bytes of UTF-8 per character, the most any accepted character takes
    document = {
        "submission_id": str(uuid.uuid4()),
        "device_id": str(uuid.uuid4()),
        "time_created": "2024-03-05T03:49:51.123456+05:30:15.123456",
        "events": {"new_process": [{"cmdl": widest * 1_000, "user": widest * 100}]},
    }
    record = build_records(parse_submission(fleet.encode(document), limits), 0, processing_timestamp())[0]
    bound = worst_case_record_bytes(limits)
    assert record.size <= bound
    # Tight: the bound only assumes the longer event type name and a sequence with more digits.
    assert bound - record.size == (len("network_connection") - len("new_process")) + (len("9999") - len("0"))
