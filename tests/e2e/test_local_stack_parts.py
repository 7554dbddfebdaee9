"""The local stack's parts on their own: flags, the stream checker, the SQS emulation (long poll,
redrive to the DLQ), worker mode, and the health endpoint over HTTP."""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import fleet
from local_stack.checker import StreamChecker
from local_stack.environment import local_environment
from local_stack.fleet import SentLog
from local_stack.health_server import HealthServer
from local_stack.invocation import build_pipeline, lambda_style_handler
from local_stack.options import Options, parse_options
from local_stack.output import output_to_log
from local_stack.poller import Poller
from local_stack.resources import queue_depth
from local_stack.services import Stack, aws_client, local_services, worker_services
from local_stack.session import Shutdown, run_worker
from local_stack.summary import format_summary, local_summary
from local_stack.tally import Tally, percentile
from local_stack.view import render_line, render_panel
from telemetry_adapter.observability import DEFAULT_NAMESPACE

_QUEUES = {"queue_depth": 1, "dlq_depth": 0, "elapsed_s": 1.0}


def test_flags_set_the_run_and_the_environment_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"DEVICES": "3", "KINESIS_ERROR_RATE": "0.1", "WORKER": "true", "DATABASE_URL": "x"}.items():
        monkeypatch.setenv(name, value)
    options = parse_options(["--devices", "7"])
    assert options.devices == 7
    assert options.kinesis_error_rate == Options().kinesis_error_rate
    assert options.worker is False
    assert options.database_url is None
    assert options.interval == Options().interval


@pytest.mark.parametrize(
    "argv",
    [
        ["--broken-rate", "1.5"],
        ["--duplicate-rate", "lots"],
        ["--visibility-timeout", "2", "--function-timeout", "5"],
        ["--batch-size", "10001"],
        ["--retry-base-delay", "10", "--retry-max-delay", "5"],
        ["--max-receive-count", "3", "--outage-tolerance", "60"],  # the 3rd receive comes 0 + 1 s after the 1st
        ["--max-receive-count", "18"],  # 59 s from the first receive to the 18th: one short of the 60 s tolerance
        ["--outage-tolerance", "604800", "--retry-max-delay", "1"],  # 1,000 receives cannot cover a week
        ["--worker", "--ledger-outage", "5"],
    ],
)
def test_invalid_settings_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_options(argv)
    assert exit_info.value.code == 2


def test_max_receive_count_is_derived_from_the_tolerance_or_checked_against_it() -> None:
    # 1 s base, 8 s cap: the halves 0, 1, 2, 4, 4, ... after the first 18 receives reach 60 s by the 19th
    assert parse_options([]).receives == 19
    assert parse_options(["--outage-tolerance", "10", "--retry-base-delay", "4"]).receives == 4  # 2 + 4 + 4
    assert parse_options(["--max-receive-count", "20"]).receives == 20
    assert parse_options(["--retry-base-delay", "3"]).processor_environment() == {
        "RETRY_BASE_DELAY_SECONDS": "3",
        "RETRY_MAX_DELAY_SECONDS": "8",
        "CIRCUIT_BREAKER_COOLDOWN_SECONDS": "5",
    }


def _event(submission_id: str, sequence: int, event_id: str | None = None) -> dict[str, object]:
    return {
        "submission_id": submission_id,
        "sequence": sequence,
        "id": event_id or str(uuid.uuid5(uuid.UUID(submission_id), str(sequence))),
    }


def test_checker_finds_reordering_conflicting_ids_and_published_broken_submissions() -> None:
    sent, tally = SentLog(), Tally()
    ordered, reordered, broken = (str(uuid.uuid4()) for _ in range(3))
    sent.valid(ordered, 2)
    sent.valid(reordered, 2)
    sent.broken(broken)
    checker = StreamChecker(sent, tally)
    for event in (
        _event(ordered, 0),
        _event(ordered, 0),  # a same-id copy: permitted, counted
        _event(ordered, 1),
        _event(reordered, 1),
        _event(reordered, 0, str(uuid.uuid4())),
        _event(broken, 0),
    ):
        checker.observe(event)
    findings = checker.snapshot()
    assert findings.order_violations == 1
    assert findings.id_conflicts == 1
    assert findings.broken_published == 1
    assert tally.duplicate_records == 1
    assert checker.incomplete() == []
    assert tally.snapshot()["latency_ms"]["count"] == 2


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([], 0.5) is None


def test_view_renders_a_panel_and_a_line() -> None:
    snapshot = {**Tally().snapshot(), "phase": "running", "order_violations": 0}
    snapshot["rejected"] = {"not_json": 2, "invalid_ip": 1}
    snapshot["quarantined"] = 3
    panel = render_panel(snapshot)
    assert any("rejected   3: not_json 2, invalid_ip 1" in line for line in panel)
    assert any("quarantine stored 3  write failures 0" in line for line in panel)
    assert "rejected 3 quarantined 3" in render_line(snapshot)


@pytest.fixture
def services(tmp_path: Path, stack_database: str | None) -> Iterator[tuple[Options, Stack]]:
    options = Options(
        visibility_timeout=1,
        function_timeout=2,
        max_receive_count=2,
        log_file=tmp_path / "run.log",
        database_url=stack_database,
    )
    with output_to_log(options.log_file), local_services(options) as stack:
        yield options, stack


@pytest.mark.timeout(60)
def test_long_poll_returns_as_soon_as_a_message_arrives(services: tuple[Options, Stack]) -> None:
    _options, stack = services
    sqs = aws_client("sqs")
    queue_url = stack.resources.queue_url
    order: list[str] = []

    def send_later() -> None:
        aws_client("sqs").send_message(QueueUrl=queue_url, MessageBody="x")
        order.append("sent")

    order.append("receiving")
    threading.Timer(0.5, send_later).start()
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=10).get("Messages", [])
    order.append("received")
    # Ordered, not timed: the message was sent after the receive began, and the receive returned it, so
    # it waited for it (a short poll would have returned at once, empty).
    assert len(messages) == 1
    assert order == ["receiving", "sent", "received"]


@pytest.mark.timeout(60)
def test_failing_messages_are_redriven_to_the_dlq_after_max_receive_count(
    services: tuple[Options, Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    options, stack = services
    resources = stack.resources
    monkeypatch.setenv("PUBLISH_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("BACKOFF_BASE_MS", "1")
    tally = Tally()
    pipeline = build_pipeline(tally, kinesis_error_rate=1.0)  # Kinesis refuses every record
    poller = Poller(
        aws_client("sqs"),
        resources.queue_url,
        lambda_style_handler(pipeline),
        tally,
        batch_size=10,
        batching_window=0,
        visibility_timeout=options.visibility_timeout,
        function_timeout=options.function_timeout,
    )
    sqs = aws_client("sqs")
    document = fleet.submission(random.Random(1), fleet.device_ids(1)[0])
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=fleet.encode(document))
    deadline = time.monotonic() + 30
    while queue_depth(sqs, resources.dlq_url).total == 0 and time.monotonic() < deadline:
        poller.poll_once()
    pipeline.publisher.close()
    assert queue_depth(sqs, resources.dlq_url).total == 1
    assert queue_depth(sqs, resources.queue_url).total == 0
    assert tally.received == options.max_receive_count
    assert tally.acknowledged == 0
    moved = sqs.receive_message(QueueUrl=resources.dlq_url)["Messages"][0]
    assert json.loads(base64.b64decode(moved["Body"]))["submission_id"] == document["submission_id"]


@pytest.mark.timeout(60)
def test_worker_mode_processes_the_queue_it_is_pointed_at(services: tuple[Options, Stack]) -> None:
    _options, stack = services
    resources = stack.resources
    sqs = aws_client("sqs")
    rng = random.Random(2)
    documents = [fleet.submission(rng, device) for device in fleet.device_ids(5)]
    for document in documents:
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=fleet.encode(document))
    worker = Options(worker=True, duration=6, visibility_timeout=30, function_timeout=5)
    with worker_services(worker) as real:  # the environment local_services set names the queue and stream
        result = run_worker(worker, real, io.StringIO(), Shutdown())
    assert result.summary["mode"] == "worker"
    assert result.summary["submissions_acknowledged"] == len(documents)
    assert result.summary["events_published"] == sum(fleet.expected_event_count(d) for d in documents)
    assert queue_depth(sqs, resources.queue_url).total == 0


@pytest.mark.timeout(60)
def test_health_endpoint_answers_over_http_and_rejects_other_methods(services: tuple[Options, Stack]) -> None:
    server = HealthServer(0)
    server.start()
    try:
        with urllib.request.urlopen(server.url, timeout=20) as response:
            document = json.loads(response.read())
            assert response.status == 200
        assert document["status"] in ("ok", "degraded")
        request = urllib.request.Request(server.url, method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=20)
        assert refused.value.code == 405
    finally:
        server.stop()


@pytest.mark.timeout(60)
def test_a_stopped_run_calls_what_is_still_queued_unfinished_not_lost(services: tuple[Options, Stack]) -> None:
    options, stack = services
    resources = stack.resources
    sqs = aws_client("sqs")
    sent, tally = SentLog(), Tally()
    rng = random.Random(3)
    documents = {d["submission_id"]: d for d in (fleet.submission(rng, device) for device in fleet.device_ids(2))}
    for submission_id, document in documents.items():
        sent.valid(submission_id, fleet.expected_event_count(document))
        response = sqs.send_message(QueueUrl=resources.queue_url, MessageBody=fleet.encode(document))
        sent.copy_sent(submission_id, response["MessageId"])
    pipeline = build_pipeline(tally)
    poller = Poller(
        aws_client("sqs"),
        resources.queue_url,
        lambda_style_handler(pipeline),
        tally,
        batch_size=1,
        batching_window=0,
        visibility_timeout=30,
        function_timeout=options.function_timeout,
    )
    assert poller.poll_once() == 1  # one submission acknowledged, the other still queued: a stop before the drain
    pipeline.publisher.close()
    checker = StreamChecker(sent, tally)  # no record read: the acknowledged one is missing from the stream

    unaccounted = checker.unaccounted(poller.acknowledged)

    assert len(unaccounted.lost) == len(unaccounted.unfinished) == 1
    assert set(unaccounted.lost + unaccounted.unfinished) == set(documents)
    summary = local_summary(tally.snapshot() | _QUEUES, checker.snapshot(), unaccounted, drained=False, seed=1)
    assert summary["unfinished_submissions"] == summary["lost_submissions"] == 1
    verdict = format_summary(summary).splitlines()[0]
    assert verdict.endswith("FAILED: 1 valid submissions unfinished (still queued), 1 valid submissions lost")


def test_a_run_stopped_with_everything_still_queued_is_incomplete_not_a_loss() -> None:
    sent, tally = SentLog(), Tally()
    for number in range(934):
        submission_id = str(uuid.UUID(int=number))
        sent.valid(submission_id, 3)
        sent.copy_sent(submission_id, f"message-{number}")
    checker = StreamChecker(sent, tally)
    unaccounted = checker.unaccounted(set())
    summary = local_summary(tally.snapshot() | _QUEUES, checker.snapshot(), unaccounted, drained=False, seed=1)
    text = format_summary(summary)
    assert summary["ok"] is False
    assert summary["lost_submissions"] == 0
    assert text.splitlines()[0].endswith("INCOMPLETE: 934 valid submissions unfinished (still queued)")
    assert "lost" not in text.splitlines()[0]
    assert "lost 0, unfinished 934" in text


def test_local_metrics_go_to_the_deployed_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make run`` and ``make invoke`` emit what the deployed function emits, in its namespace."""
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    environment = local_environment(endpoint_url="http://127.0.0.1:1", database_url="", queue_url="", dlq_url="")
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == DEFAULT_NAMESPACE == "TelemetryAdapter"
