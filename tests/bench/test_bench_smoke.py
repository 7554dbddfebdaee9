"""The bench machinery end to end on tiny batches, in both network modes: JSON keys, the calls each design
costs (ledger statements and SQL round trips, PutRecords, the idiom's DynamoDB writes), the modelled
latency really applied to every kind of call, costs, progress lines, and the one-submission case."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.packing import lower_bound, ordered_calls, unordered_calls
from bench.workload import make_batch

SIZES = (5, 20)
LONG_EVENTS = 30


@pytest.fixture(scope="module")
def run(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    out = tmp_path_factory.mktemp("bench")
    argv = [
        *("--sizes", ",".join(map(str, SIZES)), "--repeats", "1", "--large-repeats", "1"),
        *("--cpu-submissions", "30", "--cold-repeats", "1", "--memory-messages", "30"),
        *("--modelled-repeats", "1", "--modelled-large-repeats", "1"),
        *("--long-events", str(LONG_EVENTS), "--long-put-ms", "0"),
        *("--json", str(out / "bench.json"), "--chart", str(out / "bench.png")),
    ]
    progress = io.StringIO()
    with contextlib.redirect_stderr(progress), contextlib.redirect_stdout(io.StringIO()):
        assert main(argv, database_url=database_url) == 0
    assert (out / "bench.png").read_bytes().startswith(b"\x89PNG")
    loaded: dict[str, Any] = json.loads((out / "bench.json").read_text())
    return loaded, progress.getvalue(), out


@pytest.fixture(scope="module")
def document(run: tuple[dict[str, Any], str, Path]) -> dict[str, Any]:
    return run[0]


def test_json_has_every_case_next_to_the_handler(document: dict[str, Any]) -> None:
    for size in SIZES:
        row = document["batch_sizes"][str(size)]
        for key in ("handler_ms", "handler_pg8000_default_ms", "floor_ms", "floor_unordered_ms", "powertools_ms"):
            assert row[key] > 0, key
        assert "naive_ms" not in row
    for key in ("cpu_ratio", "cold_start_ratio", "peak_rss_mib"):
        assert document[key] > 0, key


def test_calls_per_batch_of_each_kind(document: dict[str, Any]) -> None:
    for size in SIZES:
        row = document["batch_sizes"][str(size)]
        assert row["ledger_statements"] == 2
        assert row["sql_round_trips"] == 2  # the ledger's connection: one exchange per statement
        assert row["sql_round_trips_pg8000_default"] == 6  # pg8000's own: three per statement
        # The idiom: a conditional PutItem and an UpdateItem per message, no reads, one PutRecords each.
        assert row["powertools_dynamodb_writes"] == 2 * size
        assert row["powertools_dynamodb_reads"] == 0
        assert row["powertools_putrecords_calls"] == size
        # Tiny batches: one call per event position, so the longest submission sets the count exactly.
        assert row["putrecords_calls"] == row["putrecords_calls_packing"] == row["putrecords_calls_lower_bound"]


def test_costs_are_itemised_and_stated(document: dict[str, Any]) -> None:
    assumptions = document["cost_assumptions"]
    assert assumptions["region"] == "us-east-1"
    assert assumptions["throughput_submissions_per_second"] == 100
    for size in SIZES:
        cost = document["modelled_network"][str(size)]["cost_usd_per_million_submissions"]
        assert cost["handler_total"] == pytest.approx(
            cost["handler_lambda"] + cost["handler_postgres_rds"] + cost["kinesis_on_demand"]
        )
        assert cost["powertools_total"] == pytest.approx(
            cost["powertools_lambda"] + cost["powertools_dynamodb"] + cost["kinesis_on_demand"]
        )
        # Two on-demand writes per submission at the stated price.
        per_write = assumptions["dynamodb_on_demand_usd_per_million_writes"]
        assert cost["powertools_dynamodb"] == pytest.approx(2 * per_write)


def test_modelled_mode_reports_every_case_and_target(document: dict[str, Any]) -> None:
    modelled = document["modelled_network"]
    assert (modelled["kinesis_rtt_ms"], modelled["sql_rtt_ms"], modelled["dynamodb_rtt_ms"]) == (10.0, 1.0, 5.0)
    for size in SIZES:
        for key in ("handler_ms", "handler_concurrent_ms", "handler_pg8000_default_ms", "floor_ms", "powertools_ms"):
            assert modelled[str(size)][key] > 0, key
    targets = {check["figure"]: check for check in modelled["targets"]}
    assert targets["ledger statements per batch at 20"]["pass"] is True
    assert "cpu / bare decode+parse+serialise" not in targets  # no I/O: measured once, in loopback
    loopback = {check["figure"]: check for check in document["checks"]}
    assert loopback["Powertools idiom / handler at 1,000"]["informational"] is True


def test_modelled_delay_is_applied_to_every_kind_of_call(document: dict[str, Any]) -> None:
    modelled = document["modelled_network"]
    for size in SIZES:
        row = modelled[str(size)]
        assert row["putrecords_calls_delayed"] == row["putrecords_calls"]
        assert row["sql_round_trips_delayed"] == row["sql_round_trips"]
    assert modelled["putrecords_calls_delayed"] > 0
    assert modelled["sql_round_trips_delayed"] > 0
    # The idiom's own DynamoDB client (built by Powertools from a session of its own) was delayed too.
    assert modelled["dynamodb_calls_delayed"] >= sum(2 * size for size in SIZES)


def test_long_submission_runs_through_the_emulated_queue(document: dict[str, Any]) -> None:
    result = document["long_submission"]
    assert result["events"] == LONG_EVENTS
    assert result["deliveries"] == 1  # fits one invocation
    assert result["completed"]
    assert result["in_order"]
    assert result["dead_lettered"] is False
    assert result["highest_receive_count"] == 1
    assert result["passed"] is True


def test_progress_says_which_case_of_how_many(run: tuple[dict[str, Any], str, Path]) -> None:
    _, err, _ = run
    lines = [line for line in err.splitlines() if line.startswith("case ")]
    assert lines
    total = int(lines[0].split(" of ")[1].split()[0])
    assert len(lines) == total  # one line per planned case, none unplanned
    assert lines[-1].startswith(f"case {total} of {total}")
    assert all("left]" in line for line in lines)


def test_no_tracked_file_is_written(run: tuple[dict[str, Any], str, Path]) -> None:
    _, _, out = run
    assert {path.name for path in out.iterdir()} == {"bench.json", "bench.png"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeats", "0"], "argument --repeats: must be from 1 to 50, got 0"),
        (["--repeats", "many"], "argument --repeats: must be a whole number from 1 to 50, got 'many'"),
        (["--sizes", "10,20000"], "argument --sizes: each batch size must be from 1 to 10,000, got 20,000"),
        (["--sizes", "10,10"], "argument --sizes: lists a batch size twice"),
        (["--kinesis-rtt-ms", "-1"], "argument --kinesis-rtt-ms: must be from 0 to 1000, got -1"),
        (["--throughput", "nan"], "argument --throughput: must be from 0.01 to 1e+06, got nan"),
        (["--network", "wan"], "argument --network: invalid choice: 'wan'"),
        (["--cases", "handler,naive"], "argument --cases: must name cases among handler, handler_concurrent"),
    ],
)
def test_flags_are_checked_with_human_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "_" not in err.split("error:")[1].split(":")[0]  # no function names such as whole_number


def test_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--publish", "--throughput", "--dynamodb-rtt-ms", "--long-events", "--powertools-max"):
        assert flag in out


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
