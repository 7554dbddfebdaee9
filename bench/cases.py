"""The per-batch cases: each prepares everything it may precompute, then returns the timed action.

``handler`` is the real Lambda entry point (``processor.handler.lambda_handler``, Powertools
decorators included) on a Lambda-shaped event, built from the environment like a warm Lambda;
``handler_concurrent`` is ``handle_batch`` on the same wiring with ``PUBLISH_CONCURRENCY=4`` (the
deployed default; see :data:`bench.stack.HANDLER_ENV` for why the main case uses 1);
``floor`` and ``floor_unordered`` are the I/O floor (:mod:`bench.floor`); ``naive`` is
:mod:`bench.naive`. All of them use the same database server and the same moto backend.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.floor import Floor
from bench.naive import NaiveProcessor
from bench.stack import CONCURRENT_PUBLISH, STREAM, Stack
from bench.workload import Batch
from devkit.lambda_shapes import LambdaContext

if TYPE_CHECKING:
    from telemetry_adapter.pipeline import BatchPipeline

CASES = ("handler", "handler_concurrent", "floor", "floor_unordered", "naive")
_TIMEOUT_MS = 900_000  # Lambda's maximum: the benchmark measures work, not the deadline


class BenchFailure(RuntimeError):
    """A case did not process its batch completely; its timing would be meaningless."""


@dataclass
class RoundTrips:
    """Ledger statements and PutRecords calls one handler batch cost, with what the contract requires."""

    ledger_statements: int
    putrecords_calls: int
    putrecords_calls_packing: int
    """Calls the ordering rule needs for these records (sequential packing, no failures)."""
    putrecords_calls_lower_bound: int
    """Guarantee 2's (docs/contract.md) ``max(longest submission, ceil(events / 500))``."""
    events: int
    events_published: int
    putrecords_calls_delayed: int | None = None
    """PutRecords calls the modelled network delayed (None on loopback): must equal ``putrecords_calls``."""
    sql_round_trips_delayed: int | None = None
    """PostgreSQL round trips the modelled network delayed (None on loopback)."""


class Runner:
    """Builds each case's timed action against one stack."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._connection = stack.connect()
        # Everything the handler imports is loaded once here, as in a warm Lambda.
        from processor import handler
        from telemetry_adapter.runtime import default_pipeline

        default_pipeline.cache_clear()
        self._handler = handler.lambda_handler
        self._handle_batch = handler.handle_batch
        self._pipeline = default_pipeline
        self._concurrent = _concurrent_pipeline()

    @property
    def publish_concurrency(self) -> int:
        """PutRecords calls the handler keeps in flight (``PUBLISH_CONCURRENCY``)."""
        return self._pipeline().settings.publish.max_concurrency

    def close(self) -> None:
        """Release the connections the cases opened."""
        self._connection.close()
        for pipeline in (self._pipeline(), self._concurrent):
            pipeline.publisher.close()
        self._pipeline.cache_clear()

    def prepare(self, case: str, batch: Batch) -> Callable[[], None]:
        """The timed action of ``case`` for ``batch`` (reset the stack for ``batch.size`` first)."""
        if case == "handler":
            return self._handler_action(batch)
        if case == "handler_concurrent":
            return self._concurrent_action(batch)
        if case in ("floor", "floor_unordered"):
            return Floor(self._connection, self._stack.kinesis, STREAM, batch, ordered=case == "floor")
        if case == "naive":
            return self._naive_action(batch)
        raise ValueError(f"unknown case {case!r}")

    def warm_up(self, batch: Batch) -> None:
        """One untimed handler batch: connections opened, caches filled, as in a warm Lambda."""
        self._stack.reset(batch.size)
        self._handler_action(batch)()
        self._stack.reset(batch.size)
        self._concurrent_action(batch)()

    def round_trips(self, batch: Batch) -> RoundTrips:
        """One untimed batch through the handler's pipeline, counting its I/O and checking its output."""
        from telemetry_adapter.deadline import Deadline

        self._stack.reset(batch.size)
        pipeline = self._pipeline()
        before = pipeline.ledger.statements
        network = self._stack.network
        delayed_before = (network.kinesis.calls, network.sql.round_trips) if network else (0, 0)
        report = pipeline.process(batch.event["Records"], Deadline(_TIMEOUT_MS, 0))
        delayed = (network.kinesis.calls, network.sql.round_trips) if network else None
        if report.failed_message_ids or report.events_published != batch.event_count:
            raise BenchFailure(f"handler pipeline left work undone: {report}")
        from bench.packing import lower_bound, ordered_calls

        return RoundTrips(
            ledger_statements=pipeline.ledger.statements - before,
            putrecords_calls=report.publish.calls,
            putrecords_calls_packing=len(ordered_calls(batch.records)),
            putrecords_calls_lower_bound=lower_bound([len(records) for records in batch.records]),
            events=batch.event_count,
            events_published=report.events_published,
            putrecords_calls_delayed=None if delayed is None else delayed[0] - delayed_before[0],
            sql_round_trips_delayed=None if delayed is None else delayed[1] - delayed_before[1],
        )

    def _handler_action(self, batch: Batch) -> Callable[[], None]:
        event = batch.event
        handler = self._handler

        def run() -> None:
            context = LambdaContext(timeout_ms=_TIMEOUT_MS)
            # Powertools prints the EMF metrics document to stdout, as in Lambda; keep it off the table.
            with contextlib.redirect_stdout(io.StringIO()):
                response: dict[str, Any] = handler(event, context)
            if response["batchItemFailures"]:
                raise BenchFailure(f"handler failed {len(response['batchItemFailures'])} messages")

        return run

    def _concurrent_action(self, batch: Batch) -> Callable[[], None]:
        event = batch.event
        handle_batch = self._handle_batch
        pipeline = self._concurrent

        def run() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                response = handle_batch(event, LambdaContext(timeout_ms=_TIMEOUT_MS), pipeline)
            if response["batchItemFailures"]:
                raise BenchFailure(f"handler failed {len(response['batchItemFailures'])} messages")

        return run

    def _naive_action(self, batch: Batch) -> Callable[[], None]:
        processor = NaiveProcessor(self._connection, self._stack.kinesis, STREAM)
        event = batch.event

        def run() -> None:
            if processor.handle(event)["batchItemFailures"]:
                raise BenchFailure("naive design failed messages")

        return run


def _concurrent_pipeline() -> BatchPipeline:
    """The runtime's wiring with ``PUBLISH_CONCURRENCY`` at the deployed default."""
    import os

    from telemetry_adapter.config import Settings
    from telemetry_adapter.runtime import build_pipeline

    return build_pipeline(Settings.from_env({**os.environ, "PUBLISH_CONCURRENCY": str(CONCURRENT_PUBLISH)}))
