"""The bench machinery end to end on tiny batches, in both network modes: JSON keys, round trips as
the ledger design and guarantee 2 require, and the modelled latency really paid by every case."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench.cli import main
from bench.packing import lower_bound, ordered_calls, unordered_calls
from bench.workload import make_batch

SIZES = (5, 20)
KINESIS_RTT_MS = 10.0
SQL_RTT_MS = 1.0


@pytest.fixture(scope="module")
def document(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    argv = [
        *("--sizes", ",".join(map(str, SIZES)), "--repeats", "1", "--large-repeats", "1"),
        *("--cpu-submissions", "30", "--cold-repeats", "1", "--memory-messages", "30"),
        *("--modelled-repeats", "1", "--modelled-large-repeats", "1", "--kinesis-rtt-ms", str(KINESIS_RTT_MS)),
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


def test_round_trips_match_the_contract(document: dict[str, Any]) -> None:
    for size in SIZES:
        assert document["ledger_statements_per_batch"][str(size)] == 2
        row = document["batch_sizes"][str(size)]
        # Tiny batches: one call per event position, so the longest submission sets the count exactly.
        expected = document["putrecords_calls_lower_bound"][str(size)]
        assert expected == row["putrecords_calls_packing"]
        assert document["putrecords_calls_per_batch"][str(size)] == expected


def test_loopback_keys_stay_at_the_top_level(document: dict[str, Any]) -> None:
    assert {"batch_sizes", "checks", "all_pass", "cpu_ratio", "putrecords_calls_per_batch"} <= document.keys()
    assert "putrecords_calls_delayed" not in document["batch_sizes"]["20"]  # nothing modelled leaks in
    figures = {check["figure"] for check in document["checks"]}
    assert "handler / floor at 20" in figures


def test_modelled_mode_reports_every_case_and_target(document: dict[str, Any]) -> None:
    modelled = document["modelled_network"]
    assert modelled["kinesis_rtt_ms"] == KINESIS_RTT_MS
    assert modelled["sql_rtt_ms"] == SQL_RTT_MS
    for size in SIZES:
        for key in ("handler_ms", "handler_concurrent_ms", "floor_ms", "floor_unordered_ms", "naive_ms"):
            assert modelled[str(size)][key] > 0, key
    targets = {check["figure"]: check for check in modelled["targets"]}
    assert targets["ledger statements per batch at 20"]["pass"] is True
    assert "cpu / bare decode+parse+serialise" not in targets  # no I/O: measured once, in loopback


def test_modelled_delay_is_really_applied(document: dict[str, Any]) -> None:
    modelled = document["modelled_network"]
    rtt = KINESIS_RTT_MS
    for size in SIZES:
        row, loopback = modelled[str(size)], document["batch_sizes"][str(size)]
        # Every PutRecords call and every SQL round trip of the handler's pipeline was delayed.
        assert row["putrecords_calls_delayed"] == row["putrecords_calls"]
        assert row["sql_round_trips_delayed"] == 3 * row["ledger_statements"]
        # Naive: one PutRecords per message, each waiting one RTT; the sequential cases wait per call.
        assert row["naive_ms"] >= size * rtt
        assert row["handler_ms"] >= row["putrecords_calls"] * rtt
        assert row["floor_ms"] >= row["putrecords_calls_packing"] * rtt
        assert row["naive_ms"] > loopback["naive_ms"]
    assert modelled["putrecords_calls_delayed"] > 0
    assert modelled["sql_round_trips_delayed"] > 0


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
