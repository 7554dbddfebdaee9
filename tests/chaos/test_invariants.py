"""The invariant checker must see each kind of violation (else a green chaos run proves nothing)."""

from __future__ import annotations

import json
import random
from typing import Any

from chaos.invariants import InvariantReport, check_ledger, check_stream
from devkit import fleet
from telemetry_adapter.config import Limits
from telemetry_adapter.records import build_records
from telemetry_adapter.submission import Submission, parse_submission


def _submission(seed: int) -> Submission:
    document = fleet.submission(random.Random(seed), fleet.device_ids(1)[0], processes=2, connections=2)
    return parse_submission(fleet.encode(document), Limits())


def _stream(*submissions: Submission) -> list[dict[str, Any]]:
    """What the stream would hold after a clean run, with shard and sequence numbers."""
    records = []
    for submission in submissions:
        for record in build_records(submission, 0, "2026-11-28T00:00:00.000000Z"):
            records.append(json.loads(record.data))
    for index, record in enumerate(records):
        record["_shard"] = "shardId-000000000000"
        record["_sequence_number"] = str(1000 + index)
    return records


def _renumber(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, record in enumerate(records):
        record["_sequence_number"] = str(1000 + index)
    return records


def test_a_clean_stream_breaks_nothing() -> None:
    first, second = _submission(1), _submission(2)
    report = check_stream(_stream(first, second), {s.submission_id: s for s in (first, second)})
    assert report.records == 8
    assert report.broken(duplicates_allowed=False) == []


def test_a_missing_event_is_lost() -> None:
    submission = _submission(1)
    records = _stream(submission)[:-1]
    report = check_stream(records, {submission.submission_id: submission})
    assert (report.lost, report.order_violations) == (1, 0)


def test_events_out_of_order_are_violations() -> None:
    submission = _submission(1)
    records = _stream(submission)
    records[1], records[2] = records[2], records[1]
    report = check_stream(_renumber(records), {submission.submission_id: submission})
    assert report.order_violations >= 1
    assert report.lost == 0


def test_a_submission_spread_over_shards_is_an_order_violation() -> None:
    submission = _submission(1)
    records = _stream(submission)
    records[-1]["_shard"] = "shardId-000000000001"
    assert check_stream(records, {submission.submission_id: submission}).order_violations >= 1


def test_records_of_unknown_submissions_are_invalid_published() -> None:
    valid, invalid = _submission(1), _submission(2)
    report = check_stream(_stream(valid, invalid), {valid.submission_id: valid})
    assert report.invalid_published == 4


def test_same_id_copies_are_duplicates_and_other_copies_mismatches() -> None:
    submission = _submission(1)
    records = _stream(submission)
    copy = dict(records[1], processing_timestamp="2026-11-28T00:00:01.000000Z")
    forged = dict(records[2], event_details={"cmdl": "rm -rf /", "user": "x"})
    report = check_stream(_renumber([*records, copy, forged]), {submission.submission_id: submission})
    assert (report.duplicates, report.duplicate_mismatches) == (2, 1)
    assert report.broken(duplicates_allowed=True) == ["duplicate_mismatches"]
    assert "duplicates" in report.broken(duplicates_allowed=False)


def test_altered_details_are_corrupted() -> None:
    submission = _submission(1)
    records = _stream(submission)
    records[0]["event_details"] = {"cmdl": "changed", "user": "x"}
    assert check_stream(records, {submission.submission_id: submission}).corrupted == 1


def test_unfinished_and_foreign_ledger_rows_are_reported() -> None:
    done, stuck = _submission(1), _submission(2)
    report = InvariantReport()
    rows = [(done.submission_id, True), (stuck.submission_id, False), ("00000000-0000-4000-8000-000000000000", True)]
    check_ledger(report, rows, {s.submission_id: s for s in (done, stuck)})
    assert (report.stuck, report.invalid_in_ledger) == (1, 1)
    assert report.examples["stuck"] == [stuck.submission_id]
