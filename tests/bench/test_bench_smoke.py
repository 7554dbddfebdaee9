"""The bench machinery end to end on tiny batches: JSON keys, and round trips as SPEC 6 and 2 require."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench.cli import main
from bench.packing import lower_bound, ordered_calls, unordered_calls
from bench.workload import make_batch

SIZES = (5, 20)


@pytest.fixture(scope="module")
def document(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    argv = [
        *("--sizes", ",".join(map(str, SIZES)), "--repeats", "1", "--large-repeats", "1"),
        *("--cpu-submissions", "30", "--cold-repeats", "1", "--memory-messages", "30"),
        *("--json", str(out / "bench.json"), "--chart", str(out / "bench.png")),
    ]
    assert main(argv, database_url=database_url) == 0
    assert (out / "bench.png").read_bytes().startswith(b"\x89PNG")
    loaded: dict[str, Any] = json.loads((out / "bench.json").read_text())
    return loaded


def test_json_has_every_key_the_issue_lists(document: dict[str, Any]) -> None:
    for size in SIZES:
        row = document["batch_sizes"][str(size)]
        for key in ("handler_ms", "floor_ms", "floor_unordered_ms", "naive_ms"):
            assert row[key] > 0, key
    for key in ("cpu_ratio", "cold_start_ratio", "peak_rss_mib"):
        assert document[key] > 0, key
    assert {check["figure"] for check in document["checks"]} >= {"handler import / import boto3"}


def test_round_trips_match_the_spec(document: dict[str, Any]) -> None:
    for size in SIZES:
        assert document["ledger_statements_per_batch"][str(size)] == 2
        row = document["batch_sizes"][str(size)]
        # Tiny batches: one call per event position, so the longest submission sets the count exactly.
        expected = document["putrecords_calls_lower_bound"][str(size)]
        assert expected == row["putrecords_calls_packing"]
        assert document["putrecords_calls_per_batch"][str(size)] == expected


def test_packing_follows_the_ordering_rule() -> None:
    batch = make_batch(1_200, seed=5)
    counts = [len(records) for records in batch.records]
    calls = ordered_calls(batch.records)
    assert all(len(call) <= 500 for call in calls)
    for call in calls:  # at most one event of any submission per call
        submissions = [record.data[record.data.index(b'"submission_id"') :][:60] for record in call]
        assert len(set(submissions)) == len(call)
    assert sum(len(call) for call in calls) == sum(counts)
    assert lower_bound(counts) <= len(calls) <= lower_bound(counts) + max(counts)
    assert len(unordered_calls(batch.records)) == math.ceil(sum(counts) / 500)
