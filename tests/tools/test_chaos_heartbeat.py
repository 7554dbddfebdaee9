"""The chaos heartbeat's running count of violations: what it can judge mid-run, record by record."""

from __future__ import annotations

import io
import json
import random
from typing import Any

from chaos.heartbeat import Heartbeat, LiveChecks, fault_groups
from devkit import fleet
from telemetry_adapter.config import Limits
from telemetry_adapter.records import build_records
from telemetry_adapter.submission import Submission, parse_submission


def submission(seed: int) -> Submission:
    rng = random.Random(seed)
    document = fleet.submission(rng, fleet.device_ids(1, seed=seed)[0], processes=2, connections=2)
    return parse_submission(fleet.encode(document), Limits())


def records_of(sent: Submission) -> list[dict[str, Any]]:
    return [json.loads(record.data) for record in build_records(sent, 0, "2026-01-01T00:00:00.000000Z")]


def test_a_clean_stream_with_same_id_copies_counts_nothing() -> None:
    sent = submission(1)
    records = records_of(sent)
    checks = LiveChecks({sent.submission_id: sent})
    for record in [records[0], records[1], records[1], *records[2:]]:  # one same-id copy: allowed
        checks.observe("shard-0", record)
    assert checks.records == len(records) + 1
    assert sum(checks.violations.values()) == 0


def test_each_kind_of_violation_is_counted() -> None:
    sent, other = submission(1), submission(2)
    records = records_of(sent)
    checks = LiveChecks({sent.submission_id: sent})
    checks.observe("shard-0", records[1])  # out of order: first copy of 1 before 0
    checks.observe("shard-1", records[0])  # on another shard, and 0 after 1
    checks.observe("shard-0", records_of(other)[0])  # never sent valid
    altered = {**records[1], "device_id": "00000000-0000-0000-0000-000000000000"}
    checks.observe("shard-0", altered)  # a copy that differs from the first
    checks.observe("shard-1", records[2])  # the spread is counted once per submission
    assert checks.violations == {"order_violations": 3, "invalid_published": 1, "duplicate_mismatches": 1}


def test_faults_are_grouped_for_the_line() -> None:
    groups = fault_groups({"kinesis_record_failures": 3, "put_records_lost_answers": 1, "database_restarts": 2})
    assert groups == {"kinesis": 4, "database": 2, "worker kills": 0, "duplicate deliveries": 0, "budget cuts": 0}


def test_no_line_before_a_run_is_attached_or_when_turned_off() -> None:
    out = io.StringIO()
    Heartbeat(out, total_seconds=10, every=0.0).beat("faults", force=True)
    Heartbeat(out, total_seconds=10, every=1.0).beat("faults", force=True)
    assert out.getvalue() == ""
