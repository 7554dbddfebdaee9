"""The chaos suite, bounded for ``make test``: every fault kind fires, every invariant holds.

Same code as ``make chaos`` (real handler, PostgreSQL, Kinesis on a moto server, a SIGKILLed worker
process), for about 15 seconds of faults at twice the default rates, then the fault-free drain.
"""

from __future__ import annotations

from typing import Any

import pytest

from chaos.config import ChaosConfig, FaultRates
from chaos.harness import run_chaos
from devkit.postgres import EmbeddedPostgresMissing

FAULT_KINDS = (
    "kinesis_record_failures",
    "kinesis_records_throttled",
    "throttle_bursts",
    "put_records_call_failures",
    "put_records_lost_answers",
    "database_connection_kills",
    "database_backends_terminated",
    "database_restarts",
    "duplicate_deliveries",
    "worker_kills",
    "budget_cuts",
    "deadline_stops",
)


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    config = ChaosConfig(duration_seconds=15, drain_timeout_seconds=40, seed=11, rates=FaultRates().scaled(2))
    try:
        return run_chaos(config)
    except EmbeddedPostgresMissing as missing:
        pytest.fail(str(missing))


def test_every_fault_kind_was_injected(result: dict[str, Any]) -> None:
    missing = [kind for kind in FAULT_KINDS if not result["faults"].get(kind)]
    assert missing == [], result["faults"]
    # Counted, not timed: each fault kind is forced on the first batches, so the run made at least one
    # batch per kind; how many more fit in its 15 seconds depends on the machine's load.
    assert result["batches"] >= len(FAULT_KINDS)
    assert result["redeliveries"] > 0


def test_no_valid_submission_is_lost_and_none_is_left_behind(result: dict[str, Any]) -> None:
    assert result["valid_submissions"] >= 50  # a few batches' worth, whatever the machine's load
    assert (result["lost"], result["dead_lettered"], result["unfinished"], result["stuck"]) == (0, 0, 0, 0)
    assert result["records_in_stream"] >= result["events_expected"]


def test_order_holds_and_nothing_invalid_or_altered_is_published(result: dict[str, Any]) -> None:
    assert (result["order_violations"], result["invalid_published"], result["corrupted"]) == (0, 0, 0)
    assert result["invalid_in_ledger"] == 0


def test_duplicates_are_only_same_id_copies_after_ambiguous_faults(result: dict[str, Any]) -> None:
    assert result["duplicate_mismatches"] == 0
    assert result["duplicates_allowed"]
    # Every extra record in the stream is a counted duplicate, nothing else.
    assert result["records_in_stream"] == result["events_expected"] + result["duplicates"]


def test_the_run_reports_no_broken_invariant(result: dict[str, Any]) -> None:
    assert result["broken"] == []
    assert result["ok"] is True
