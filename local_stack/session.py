"""One run, start to clean stop: start the parts, let the fleet send, drain, let the consumer catch up,
stop everything in order, and summarise.

The order matters for the guarantees being checked: the fleet stops first; the poller keeps going
until the queue is empty (every message deleted, rejected or dead-lettered) or the drain timeout;
the consumer stops only after it has read everything written (or stopped finding anything new); only
then is a valid submission whose events are not all in the stream counted as lost.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from devkit.terminal import Output
from local_stack.checker import StreamChecker
from local_stack.consumer import StreamConsumer
from local_stack.environment import REGION, without_password
from local_stack.faults import DatabaseRestarter, LedgerOutage
from local_stack.fleet import FleetEmulator, SentLog
from local_stack.gauges import Gauges
from local_stack.health_server import HealthServer
from local_stack.invocation import RecordingPipeline, build_pipeline, lambda_style_handler
from local_stack.options import Options
from local_stack.poller import Poller
from local_stack.resources import queue_depth
from local_stack.services import Stack, aws_client
from local_stack.stack_file import LocalStackFile, now_text, published
from local_stack.summary import local_summary, worker_summary
from local_stack.tally import Tally
from local_stack.view import LiveView

_CATCH_UP_SECONDS = 20.0
_CAUGHT_UP_ROUNDS = 3
_DRAIN_CHECK_SECONDS = 0.5


@dataclass
class Shutdown:
    """Stop requests: the first ends the sending, a second one skips the drain."""

    stop: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)
    """The terminal went away (SIGHUP, or the view could not write): the run stops as on SIGTERM."""

    def request(self) -> None:
        """Ctrl-C or SIGTERM: stop, or abort if already stopping."""
        if self.stop.is_set():
            self.abort.set()
        self.stop.set()

    def hang_up(self) -> None:
        """SIGHUP or a lost terminal: one stop request, however many ways the loss is noticed."""
        if not self.hung_up.is_set():
            self.hung_up.set()
            self.request()


@dataclass
class RunResult:
    """What a run produced."""

    summary: dict[str, Any]
    sent: SentLog | None = None
    health_url: str | None = None


class _Phase:
    def __init__(self) -> None:
        self.name = "starting"


def _started(*parts: Any) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    for part in parts:
        part.start()
        stack.callback(part.stop)
    return stack


def _poller(options: Options, queue_url: str, pipeline: RecordingPipeline, tally: Tally) -> Poller:
    return Poller(
        aws_client("sqs"),
        queue_url,
        lambda_style_handler(pipeline),
        tally,
        batch_size=options.batch_size,
        batching_window=options.batching_window,
        visibility_timeout=options.visibility_timeout,
        function_timeout=options.function_timeout,
    )


@contextlib.contextmanager
def _pipeline(options: Options, tally: Tally, seed: int) -> Iterator[RecordingPipeline]:
    pipeline = build_pipeline(tally, kinesis_error_rate=options.kinesis_error_rate, seed=seed)
    try:
        yield pipeline
    finally:
        pipeline.publisher.close()


def run_local(options: Options, stack: Stack, terminal: Output, shutdown: Shutdown) -> RunResult:
    """Run fleet, poller, consumer, health server and view against the embedded services."""
    resources = stack.resources
    tally = Tally()
    phase = _Phase()
    fleet = FleetEmulator(
        lambda: aws_client("sqs"),
        resources.queue_url,
        devices=options.devices,
        interval=options.interval,
        broken_rate=options.broken_rate,
        duplicate_rate=options.duplicate_rate,
        tally=tally,
        seed=options.seed,
    )
    checker = StreamChecker(fleet.log, tally)
    consumer = StreamConsumer(aws_client("kinesis"), resources.stream_name, checker)
    health = HealthServer(options.health_port)
    sqs = aws_client("sqs")
    gauges = Gauges(aws_client("sqs"), resources.queue_url, resources.dlq_url, health.url, tally)

    def snapshot() -> dict[str, Any]:
        return {**tally.snapshot(), **vars(checker.snapshot()), "phase": phase.name}

    view = LiveView(snapshot, terminal)
    announce(terminal, stack, health.url, options)
    with _pipeline(options, tally, fleet.seed) as pipeline, contextlib.ExitStack() as running:
        poller = _poller(options, resources.queue_url, pipeline, tally)
        running.enter_context(_started(health, consumer, poller, gauges, view))
        running.enter_context(published(options.stack_file, stack_file(stack, health.url)))
        restarter = None
        if options.db_restart_every > 0 and stack.database_url:
            restarter = DatabaseRestarter(stack.database_url, options.db_restart_every, tally)
            restarter.start()
        if stack.ledger_proxy is not None:
            outage = LedgerOutage(
                stack.ledger_proxy, starts_after=options.ledger_outage_at, seconds=options.ledger_outage, tally=tally
            )
            outage.start()
            running.callback(outage.stop)  # stopped with the other parts, and never left on
        fleet.start()
        phase.name = "running"
        shutdown.stop.wait(options.duration or None)
        fleet.stop()
        if restarter is not None:
            restarter.stop()
        phase.name = "draining"
        drained = _drain(sqs, resources.queue_url, poller, options.drain_timeout, shutdown)
        poller.stop()
        phase.name = "catch-up"
        _catch_up(checker, consumer, shutdown)
        consumer.stop()
        gauges.sample()
        phase.name = "stopped"
        unaccounted = checker.unaccounted(poller.acknowledged)
    summary = local_summary(tally.snapshot(), checker.snapshot(), unaccounted, drained=drained, seed=fleet.seed)
    return RunResult(summary, fleet.log, health.url)


def announce(terminal: Output, stack: Stack, health_url: str, options: Options) -> None:
    """Where everything is, before the live view starts (the ports matter for ``make invoke``)."""
    database = "embedded PostgreSQL, deleted at exit" if stack.embedded_database else "EXTERNAL, --database-url"
    resources = stack.resources
    terminal.write(
        f"  AWS endpoint   {stack.endpoint_url}  (queue {resources.queue_url}, stream {resources.stream_name})\n"
        f"  ledger         {without_password(stack.database_url or '')}  ({database})\n"
        f"  health         {health_url}\n"
        f"  stack file     {options.stack_file}  (make ops ARGS='--local ...' reads it)\n"
        f"  logs, metrics  {options.log_file}\n"
        "  Ctrl-C stops the fleet and drains; a second Ctrl-C skips the drain\n"
    )
    terminal.flush()


def stack_file(stack: Stack, health_url: str) -> LocalStackFile:
    """What the stack file says about this run (see :mod:`local_stack.stack_file`)."""
    resources = stack.resources
    return LocalStackFile(
        aws_endpoint=stack.endpoint_url or "",
        region=REGION,
        queue_url=resources.queue_url,
        dlq_url=resources.dlq_url,
        quarantine_bucket=resources.quarantine_bucket,
        stream_name=resources.stream_name,
        database_url=stack.database_url or "",
        health_url=health_url,
        pid=os.getpid(),
        started_at=now_text(),
    )


def run_worker(options: Options, stack: Stack, terminal: Output, shutdown: Shutdown) -> RunResult:
    """Run only the poller (and the view) against the endpoints the environment names, until stopped."""
    resources = stack.resources
    tally = Tally()
    phase = _Phase()
    gauges = Gauges(aws_client("sqs"), resources.queue_url, resources.dlq_url, None, tally)
    tally.set(health="n/a (worker)")

    def snapshot() -> dict[str, Any]:
        return {**tally.snapshot(), "phase": phase.name}

    view = LiveView(snapshot, terminal)
    with _pipeline(options, tally, 1) as pipeline:
        poller = _poller(options, resources.queue_url, pipeline, tally)
        with _started(poller, gauges, view):
            phase.name = "worker"
            shutdown.stop.wait(options.duration or None)
            phase.name = "stopping"
    return RunResult(worker_summary(tally.snapshot()))


def _drain(sqs: Any, queue_url: str, poller: Poller, timeout: float, shutdown: Shutdown) -> bool:
    """Wait until the queue holds nothing (visible, in flight or delayed); False on timeout or abort."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends and not shutdown.abort.is_set():
        with contextlib.suppress(Exception):  # the endpoint is busy: look again
            if queue_depth(sqs, queue_url).total == 0 and poller.idle.is_set():
                return True
        shutdown.abort.wait(_DRAIN_CHECK_SECONDS)
    return False


def _catch_up(checker: StreamChecker, consumer: StreamConsumer, shutdown: Shutdown) -> None:
    """Let the consumer read what is left: until every valid submission is complete, or nothing new comes."""
    ends = time.monotonic() + _CATCH_UP_SECONDS
    consumer.restart_idle_count()
    while time.monotonic() < ends and not shutdown.abort.is_set():
        if not checker.incomplete() or consumer.caught_up() >= _CAUGHT_UP_ROUNDS:
            return
        shutdown.abort.wait(_DRAIN_CHECK_SECONDS)
