"""The scenario driver: batches through the real handler while faults fire, then a fault-free drain.

Each batch is taken from the emulated queue (:mod:`chaos.redelivery`) and handled by
``processor.handler.handle_batch`` with one of two warm pipelines (each its own ledger connection and
publisher, like two Lambda execution environments). Per-call Kinesis faults are always on during the
fault phase; on top, each batch may get one batch-level fault: the database backends killed between two
Kinesis calls, a database restart during publishing, the same messages handled by both pipelines at
once, a worker process SIGKILLed after a Kinesis acknowledgement and before the ledger update, or an
invocation whose time budget runs out mid-batch. Then faults stop and the queue drains, so whatever
the faults left unfinished must complete through ordinary redelivery.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.config import STREAM, ChaosConfig
from chaos.control import RunControl
from chaos.database_faults import ChaosDatabase, DatabaseSaboteur
from chaos.kinesis_faults import KinesisFaults
from chaos.redelivery import Message, RedeliveryQueue
from chaos.traffic import Traffic
from chaos.worker import run_worker
from devkit.lambda_shapes import LambdaContext
from processor.handler import handle_batch
from telemetry_adapter.config import Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.pipeline import BatchPipeline, BatchReport
from telemetry_adapter.publisher import KinesisClient, OrderedPublisher

# The restart comes last: while the database is down, the kinds forced before it could not happen.
BATCH_FAULTS = ("worker_kill", "connection_kill", "duplicate_delivery", "budget_cut", "database_restart")


class ObservedPipeline(BatchPipeline):
    """The real pipeline, keeping each batch's report so the run can count deadline stops."""

    def __init__(self, settings: Settings, ledger: Ledger, publisher: OrderedPublisher, **options: Any) -> None:
        super().__init__(settings, ledger, publisher, **options)
        self.reports: list[BatchReport] = []

    def process(self, records: Sequence[Mapping[str, Any]], deadline: Deadline) -> BatchReport:
        """Process as usual; remember the report."""
        report = super().process(records, deadline)
        self.reports.append(report)
        return report


@dataclass
class RunStats:
    """What the run did, as the figures in ``build/chaos.json``."""

    batches: int = 0
    deliveries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    drain_batches: int = 0
    drain_seconds: float = 0.0
    fault_seconds: float = 0.0


class ChaosRun:
    """One chaos run against a database and a Kinesis endpoint."""

    def __init__(
        self,
        config: ChaosConfig,
        database: ChaosDatabase,
        kinesis: Any,
        worker_env: Mapping[str, str],
    ) -> None:
        self.config = config
        self.database = database
        self.kinesis = kinesis
        self._worker_env = dict(worker_env)
        self._rng = random.Random(config.seed)  # noqa: S311 - fault schedule, not cryptography
        self.faults = KinesisFaults(kinesis, config.rates, seed=config.seed)
        self.saboteur = DatabaseSaboteur(database.url, database.server_url, database.restarter, seed=config.seed)
        self.queue = RedeliveryQueue(visibility_seconds=config.visibility_seconds, max_receives=config.max_receives)
        self.traffic = Traffic(
            seed=config.seed,
            devices=config.devices,
            invalid_share=config.invalid_share,
            duplicate_share=config.duplicate_share,
        )
        self.pipelines = [self._pipeline(), self._pipeline()]
        self.stats = RunStats()
        self._forced = list(BATCH_FAULTS) if config.guarantee_each_fault else []
        """Kinds still to force on the next batches, until each has really happened once."""

    def _pipeline(self) -> ObservedPipeline:
        settings = self.config.settings()
        ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(self.database.url).connect))
        client: KinesisClient = self.faults.client
        return ObservedPipeline(settings, ledger, OrderedPublisher(client, settings.stream_name, settings.publish))

    def run(self, control: RunControl | None = None) -> RunStats:
        """The fault phase for the configured duration (or until ``control`` stops it), then the drain."""
        control = control or RunControl()
        started = time.monotonic()
        end = started + self.config.duration_seconds
        while time.monotonic() < end and not control.stop.is_set():
            control.tick("faults")
            self._top_up()
            batch = self.queue.receive(self.config.batch_size)
            if not batch:
                time.sleep(min(0.05, self.queue.seconds_until_visible() or 0.05))
                continue
            self._run_batch(batch, self._choose_fault())
        self.stats.fault_seconds = time.monotonic() - started
        self._drain(control)
        for pipeline in self.pipelines:
            pipeline.publisher.close()
        self.stats.faults["deadline_stops"] = sum(
            report.publish.stopped_by_deadline for pipeline in self.pipelines for report in pipeline.reports
        )
        self.stats.faults.update(self.faults.counts())
        self.stats.faults.update(self.saboteur.counts())
        return self.stats

    def _top_up(self) -> None:
        """New traffic while the backlog is short, so redeliveries never pile up."""
        if len(self.queue) < 3 * self.config.batch_size:
            for _ in range(self.config.new_messages_per_batch):
                body, valid = self.traffic.next_body()
                self.queue.send(body, valid=valid)

    def _choose_fault(self) -> str | None:
        if self._forced:
            return self._forced[0]
        rates = self.config.rates
        for kind in BATCH_FAULTS:
            if self._rng.random() < getattr(rates, kind):
                return kind
        return None

    def _run_batch(self, batch: list[Message], fault: str | None) -> None:
        event = {"Records": [message.record() for message in batch]}
        forced = bool(self._forced) and fault == self._forced[0]
        after_calls = 1 if forced else self._rng.randint(1, 3)
        happened = True
        self.stats.batches += 1
        self.stats.deliveries += len(batch)
        failed: frozenset[str]
        if fault == "duplicate_delivery":
            failed = self._two_workers(event)
            self.stats.faults["duplicate_deliveries"] += 1
        elif fault == "worker_kill":
            outcome = run_worker(
                event,
                self._worker_env,
                kill_after_calls=after_calls,
                timeout_ms=self.config.timeout_ms,
            )
            self.stats.faults["worker_kills"] += outcome.killed
            happened = outcome.killed
            failed = outcome.failed_message_ids
        elif fault == "budget_cut":
            self.stats.faults["budget_cuts"] += 1
            timeout_ms = self._rng.randint(*self.config.budget_cut_timeout_ms)
            failed = self._handle(self.pipelines[0], event, timeout_ms)
        elif fault in ("connection_kill", "database_restart"):
            self.faults.hook.arm(after_calls, self._database_action(fault))
            failed = self._handle(self.pipelines[0], event, self.config.timeout_ms)
            happened = not self.faults.hook.disarm()
        else:
            failed = self._handle(self.pipelines[0], event, self.config.timeout_ms)
        if forced and happened:
            self._forced.pop(0)
        self.queue.settle(batch, failed)

    def _database_action(self, fault: str) -> Callable[[], None]:
        if fault == "connection_kill":
            return self.saboteur.kill_processor_backends

        def restart() -> None:
            self.saboteur.restart_in_background(self.config.restart_block_seconds)

        return restart

    def _handle(self, pipeline: BatchPipeline, event: dict[str, Any], timeout_ms: int) -> frozenset[str]:
        response = handle_batch(event, LambdaContext(timeout_ms=timeout_ms), pipeline)
        return frozenset(item["itemIdentifier"] for item in response["batchItemFailures"])

    def _two_workers(self, event: dict[str, Any]) -> frozenset[str]:
        """Both pipelines handle the same messages at the same moment; a message is gone once either
        acknowledges it (SQS deletes it by either receipt handle)."""
        start = threading.Barrier(2)
        results: list[frozenset[str]] = [frozenset(), frozenset()]

        def work(index: int) -> None:
            start.wait(timeout=10)
            results[index] = self._handle(self.pipelines[index], event, self.config.timeout_ms)

        threads = [threading.Thread(target=work, args=(index,), name=f"worker-{index}") for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return results[0] & results[1]

    def _drain(self, control: RunControl) -> None:
        """Faults off, no new traffic: redeliver until the queue is empty, the drain times out or is skipped."""
        started = time.monotonic()
        self.saboteur.wait()
        self.faults.set_rates(self.config.rates.scaled(0))
        while len(self.queue) and time.monotonic() - started < self.config.drain_timeout_seconds:
            if control.abort.is_set():
                break
            control.tick("drain")
            batch = self.queue.receive(self.config.batch_size)
            if not batch:
                time.sleep(min(0.1, self.queue.seconds_until_visible() or 0.1))
                continue
            self.stats.drain_batches += 1
            failed = self._handle(self.pipelines[0], {"Records": [m.record() for m in batch]}, self.config.timeout_ms)
            self.queue.settle(batch, failed)
        self.stats.drain_seconds = time.monotonic() - started


__all__ = ["BATCH_FAULTS", "STREAM", "ChaosRun", "RunStats"]
