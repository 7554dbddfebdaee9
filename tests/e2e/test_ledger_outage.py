"""``make run --ledger-outage``: the ledger is unreachable for longer than ``maxReceiveCount`` receives
at the queue's visibility timeout would last, and still nothing valid reaches the dead-letter queue.

Without a backoff, a message failing at every receive would be dead-lettered after ``maxReceiveCount``
visibility timeouts. With it, each failed message waits a delay that grows with its receive count, so
its receives, first to last, span the outage tolerance (from which the run derives ``maxReceiveCount``, as the CDK app
does), and every valid submission completes once the ledger is back.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devkit.kinesis import read_stream
from local_stack.options import Options, parse_options
from local_stack.output import output_to_log
from local_stack.resources import queue_depth
from local_stack.services import aws_client, local_services
from local_stack.session import Shutdown, run_local
from telemetry_adapter.retry_schedule import guaranteed_retry_span_seconds

pytestmark = pytest.mark.slow

LEASE_GRACE_SECONDS = 1

FLAGS = [
    "--devices", "5", "--interval", "0.5", "--duration", "3", "--batch-size", "1",
    "--visibility-timeout", "2", "--function-timeout", "2",
    "--retry-base-delay", "6", "--retry-max-delay", "12", "--outage-tolerance", "15", "--breaker-cooldown", "2",
    "--ledger-outage", "9", "--ledger-outage-at", "1", "--drain-timeout", "60", "--seed", "7",
]  # fmt: skip


def test_the_flags_size_the_queue_as_the_stack_would() -> None:
    options = parse_options(FLAGS)
    # The waits of at least 3, 6 and 6 s after the first three receives put the fourth, the last try,
    # 15 s after the first: the tolerance.
    assert options.receives == 4
    # The outage outlasts the receives at the visibility timeout.
    assert options.receives * options.visibility_timeout < options.ledger_outage
    # A message that failed as the outage began gets its last try once the outage and one breaker
    # cooldown after it are over, with seconds to spare for a loaded machine. (A batch claimed just
    # before the outage holds its lease for the invocation plus the grace, over long before that.)
    span = guaranteed_retry_span_seconds(options.receives, options.retry_base_delay, options.retry_max_delay)
    assert span - (options.ledger_outage + options.breaker_cooldown) >= 3
    assert options.function_timeout + LEASE_GRACE_SECONDS < options.ledger_outage


@pytest.mark.timeout(120)
def test_a_ledger_outage_longer_than_the_receives_at_the_visibility_timeout_loses_nothing(
    tmp_path: Path, stack_database: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A submission claimed just before the outage keeps its lease for the invocation plus this grace.
    monkeypatch.setenv("LEASE_GRACE_SECONDS", str(LEASE_GRACE_SECONDS))
    options = Options(
        **{
            **vars(parse_options(FLAGS)),
            "database_url": stack_database,
            "summary": tmp_path / "run-summary.json",
            "log_file": tmp_path / "run.log",
            "stack_file": tmp_path / "local-stack.json",
        }
    )
    with output_to_log(options.log_file), local_services(options) as stack:
        result = run_local(options, stack, io.StringIO(), Shutdown())
        records = read_stream(aws_client("kinesis"), stack.resources.stream_name)
        sqs = aws_client("sqs")
        dlq_left = queue_depth(sqs, stack.resources.dlq_url).total
        queue_left = queue_depth(sqs, stack.resources.queue_url).total

    summary = result.summary
    assert summary["ledger_outages"] == 1
    assert summary["ledger_failures"] > 0  # the outage really failed batches
    assert summary["circuit_breaker_opened"] >= 1
    assert summary["batches_refused_by_breaker"] >= 1
    assert summary["messages_backed_off"] > 0
    assert (dlq_left, queue_left, summary["drained"]) == (0, 0, True)
    assert summary["lost_submissions"] == 0  # every valid submission completed once the ledger was back
    assert summary["order_violations"] == 0
    assert summary["events_published"] >= summary["events_read"] - summary["duplicate_records_read"]
    assert len(records) == summary["events_read"]
    assert summary["ok"] is True
