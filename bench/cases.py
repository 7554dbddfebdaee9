"""The per-batch cases: each prepares everything it may precompute, then returns the timed action.

``handler`` is the real Lambda entry point (``processor.handler.lambda_handler``, Powertools
decorators included) on a Lambda-shaped event, built from the environment like a warm Lambda;
``handler_concurrent`` is ``handle_batch`` on the same wiring with ``PUBLISH_CONCURRENCY=4`` (the
deployed default; see :data:`bench.stack.HANDLER_ENV` for why the main case uses 1);
``handler_pg8000_default`` is the same handler with its ledger on pg8000's own connection (three round
trips per statement, Nagle's algorithm on: :mod:`bench.pg8000_default`) instead of the ledger's
one-trip connection; ``floor`` and ``floor_unordered`` are the I/O floor (:mod:`bench.floor`), on the
ledger's connection; ``powertools`` is the Powertools idempotency idiom (:mod:`bench.idiom`).
``ledger``, ``ledger_pg8000_default`` and ``ledger_nodelay`` are the ledger's two statements alone
(claim and outcome, through ``Ledger``): on the ledger's connection, on pg8000's as it is, and on
pg8000's with only ``TCP_NODELAY`` set: the difference the connection makes, and each part's share,
without the rest of the batch around it. All of them use the same database server and the same moto
backend.

There is no "naive" case (one SQL statement and one PutRecords call per message): it would have the
idiom's per-message shape with a store nobody would pick for it, so it would tell nothing the idiom
does not, and the idiom is what users would really write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from bench.floor import Floor
from bench.idiom import build_idiom
from bench.latency import DYNAMODB_EVENT, PUT_RECORDS_EVENT, OperationCounter, attach, delay_calls
from bench.pg8000_default import (
    WireTrips,
    nodelay_connect,
    pg8000_default_connect,
    pg8000_default_ledger,
    product_connect,
    wire_round_trips,
)
from bench.stack import CONCURRENT_PUBLISH, IDEMPOTENCY_TABLE, REGION, STREAM, Stack
from bench.workload import Batch
from devkit.lambda_shapes import LambdaContext
from telemetry_adapter.ledger.connection import ConnectionProvider
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger

if TYPE_CHECKING:
    from telemetry_adapter.pipeline import BatchPipeline

CASES = (
    "handler",
    "handler_concurrent",
    "handler_pg8000_default",
    "floor",
    "floor_unordered",
    "powertools",
    "ledger",
    "ledger_pg8000_default",
    "ledger_nodelay",
)
_TIMEOUT_MS = 900_000  # Lambda's maximum: the benchmark measures work, not the deadline
_COUNTER_ID = "bench-count-idiom"


class BenchFailure(RuntimeError):
    """A case did not process its batch completely; its timing would be meaningless."""


@dataclass
class RoundTrips:
    """The I/O one batch costs each design, with what the contract requires."""

    ledger_statements: int
    putrecords_calls: int
    putrecords_calls_packing: int
    """Calls the ordering rule needs for these records (sequential packing, no failures)."""
    putrecords_calls_lower_bound: int
    """The ordering guarantee's ``max(longest submission, ceil(events / 500))``."""
    events: int
    events_published: int
    wire: WireTrips
    """SQL round trips per statement on the wire, as the ledger's connection sends them."""
    wire_pg8000_default: WireTrips
    """The same statements sent by pg8000's own connection."""
    powertools_dynamodb_writes: int | None
    """None where the idiom does not run (above ``--powertools-max``)."""
    powertools_dynamodb_reads: int | None
    powertools_putrecords_calls: int | None
    putrecords_calls_delayed: int | None = None
    """PutRecords calls the modelled network delayed (None on loopback): must equal ``putrecords_calls``."""
    sql_round_trips_delayed: int | None = None
    """PostgreSQL round trips the modelled network delayed (None on loopback)."""

    def row(self) -> dict[str, Any]:
        """The per-size JSON fields."""
        row: dict[str, Any] = {
            "events_per_batch": self.events,
            "ledger_statements": self.ledger_statements,
            "sql_round_trips_per_statement": self.wire.per_batch / 2,
            "sql_round_trips": self.wire.per_batch,
            "sql_round_trips_pg8000_default": self.wire_pg8000_default.per_batch,
            "putrecords_calls": self.putrecords_calls,
            "putrecords_calls_packing": self.putrecords_calls_packing,
            "putrecords_calls_lower_bound": self.putrecords_calls_lower_bound,
            "powertools_dynamodb_writes": self.powertools_dynamodb_writes,
            "powertools_dynamodb_reads": self.powertools_dynamodb_reads,
            "powertools_dynamodb_calls": None
            if self.powertools_dynamodb_writes is None or self.powertools_dynamodb_reads is None
            else self.powertools_dynamodb_writes + self.powertools_dynamodb_reads,
            "powertools_putrecords_calls": self.powertools_putrecords_calls,
            "powertools_sql_round_trips": None if self.powertools_putrecords_calls is None else 0,
        }
        if self.putrecords_calls_delayed is not None:
            row["putrecords_calls_delayed"] = self.putrecords_calls_delayed
            row["sql_round_trips_delayed"] = self.sql_round_trips_delayed
        return row


_DYNAMODB_READS = ("GetItem", "Query", "Scan", "BatchGetItem")


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
        self._pg8000_default = _pg8000_default_pipeline(stack.database_url)
        from local_stack.invocation import lambda_style_handler

        self._pg8000_default_handler = lambda_style_handler(self._pg8000_default)
        self._idiom = build_idiom(IDEMPOTENCY_TABLE, boto3.client("kinesis", region_name=REGION), STREAM)
        if stack.network is not None:
            delay_calls(self._idiom.dynamodb, stack.network.dynamodb)
        self._ledgers = {
            "ledger": ConnectionProvider(product_connect(stack.database_url)),
            "ledger_pg8000_default": ConnectionProvider(pg8000_default_connect(stack.database_url)),
            "ledger_nodelay": ConnectionProvider(nodelay_connect(stack.database_url)),
        }
        self._idiom_calls = OperationCounter()
        attach(self._idiom.dynamodb, DYNAMODB_EVENT, self._idiom_calls, _COUNTER_ID)

    @property
    def publish_concurrency(self) -> int:
        """PutRecords calls the handler keeps in flight (``PUBLISH_CONCURRENCY``)."""
        return self._pipeline().settings.publish.max_concurrency

    def close(self) -> None:
        """Release the connections the cases opened."""
        self._connection.close()
        for provider in self._ledgers.values():
            provider.discard()
        for pipeline in (self._pipeline(), self._concurrent, self._pg8000_default):
            pipeline.publisher.close()
        self._pipeline.cache_clear()

    def prepare(self, case: str, batch: Batch) -> Callable[[], None]:
        """The timed action of ``case`` for ``batch`` (reset the stack for ``batch.size`` first)."""
        if case == "handler":
            return _checked(self._handler, batch)
        if case == "handler_concurrent":
            return _checked(lambda event, context: self._handle_batch(event, context, self._concurrent), batch)
        if case == "handler_pg8000_default":
            return _checked(self._pg8000_default_handler, batch)
        if case in ("floor", "floor_unordered"):
            return Floor(self._connection, self._stack.kinesis, STREAM, batch, ordered=case == "floor")
        if case == "powertools":
            return _checked(self._idiom.lambda_handler, batch)
        if case in self._ledgers:
            return _ledger_statements(Ledger(self._ledgers[case]), batch)
        raise ValueError(f"unknown case {case!r}")

    def warm_up(self, batch: Batch) -> None:
        """One untimed batch per case: connections opened, caches filled, as in a warm Lambda."""
        for case in CASES:
            self._stack.reset(batch.size)
            self.prepare(case, batch)()

    def round_trips(self, batch: Batch, *, count_idiom: bool = True) -> RoundTrips:
        """Untimed batches counting each design's I/O and checking the handler's output (the idiom's
        only when ``count_idiom``: with the modelled network one idiom batch of 10,000 takes minutes)."""
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

        statements = pipeline.ledger.statements - before
        self._stack.reset(batch.size)
        wire = wire_round_trips(self._stack.database_url, batch.submissions, product_connect)
        self._stack.reset(batch.size)
        wire_pg8000_default = wire_round_trips(self._stack.database_url, batch.submissions, pg8000_default_connect)
        writes, reads, idiom_puts = self._count_idiom(batch) if count_idiom else (None, None, None)
        return RoundTrips(
            ledger_statements=statements,
            putrecords_calls=report.publish.calls,
            putrecords_calls_packing=len(ordered_calls(batch.records)),
            putrecords_calls_lower_bound=lower_bound([len(records) for records in batch.records]),
            events=batch.event_count,
            events_published=report.events_published,
            wire=wire,
            wire_pg8000_default=wire_pg8000_default,
            powertools_dynamodb_writes=writes,
            powertools_dynamodb_reads=reads,
            powertools_putrecords_calls=idiom_puts,
            putrecords_calls_delayed=None if delayed is None else delayed[0] - delayed_before[0],
            sql_round_trips_delayed=None if delayed is None else delayed[1] - delayed_before[1],
        )

    def _count_idiom(self, batch: Batch) -> tuple[int, int, int]:
        """One untimed idiom batch: DynamoDB writes and reads, PutRecords calls; checks every event landed."""
        self._stack.reset(batch.size)
        puts = OperationCounter()
        kinesis = self._idiom.kinesis
        attach(kinesis, PUT_RECORDS_EVENT, puts, _COUNTER_ID)
        self._idiom_calls.calls.clear()
        try:
            _checked(self._idiom.lambda_handler, batch)()
        finally:
            kinesis.meta.events.unregister(PUT_RECORDS_EVENT, unique_id=_COUNTER_ID)
        if self._stack.stream_record_count() != batch.event_count:
            raise BenchFailure("the Powertools idiom did not publish every event")
        calls = self._idiom_calls.calls
        reads = sum(calls[name] for name in _DYNAMODB_READS)
        return self._idiom_calls.total() - reads, reads, puts.total()


def _checked(handler: Callable[[dict[str, Any], Any], dict[str, Any]], batch: Batch) -> Callable[[], None]:
    """Call ``handler`` on the batch's event with a fresh context; fail on any batch item failure."""
    event = batch.event

    def run() -> None:
        response = handler(event, LambdaContext(timeout_ms=_TIMEOUT_MS))
        if response["batchItemFailures"]:
            raise BenchFailure(f"{len(response['batchItemFailures'])} messages failed")

    return run


def _ledger_statements(ledger: Ledger, batch: Batch) -> Callable[[], None]:
    """Claim the batch's submissions and record them published: the handler's two statements, nothing else."""
    requests = [ClaimRequest(s.submission_id, s.device_id, s.digest, len(s.events)) for s in batch.submissions]
    published = {request.submission_id: request.event_count for request in requests}

    def run() -> None:
        claims = ledger.claim(requests, owner="bench-ledger", lease_seconds=900.0)
        if len(claims) != len(requests):
            raise BenchFailure("the claim did not answer for every submission")
        ledger.record_outcome(published, owner="bench-ledger", worker="bench-ledger", batch_size=batch.size)

    return run


def _concurrent_pipeline() -> BatchPipeline:
    """The runtime's wiring with ``PUBLISH_CONCURRENCY`` at the deployed default."""
    import os

    from telemetry_adapter.config import Settings
    from telemetry_adapter.runtime import build_pipeline

    return build_pipeline(Settings.from_env({**os.environ, "PUBLISH_CONCURRENCY": str(CONCURRENT_PUBLISH)}))


def _pg8000_default_pipeline(database_url: str) -> BatchPipeline:
    """The runtime's wiring with the ledger on pg8000's own connection."""
    from telemetry_adapter.config import Settings
    from telemetry_adapter.pipeline import BatchPipeline
    from telemetry_adapter.publisher import OrderedPublisher
    from telemetry_adapter.runtime import kinesis_client

    settings = Settings.from_env()
    publisher = OrderedPublisher(kinesis_client(), settings.stream_name, settings.publish)
    return BatchPipeline(settings, pg8000_default_ledger(database_url), publisher)
