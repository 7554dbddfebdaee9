"""Thread-safe counters every part of a run adds to, and the view and summary read.

One lock, short critical sections: the fleet, the poller, the consumer and the gauges each update a
few integers per message or batch, far below anything the lock could slow down.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from telemetry_adapter.circuit_breaker import Admission
from telemetry_adapter.pipeline import BatchReport


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of ``values`` (``share`` in 0..1), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Tally:
    """Counters of one run."""

    started: float = field(default_factory=time.monotonic)
    # fleet
    sent: int = 0
    sent_valid: int = 0
    sent_defective: int = 0
    sent_hostile: int = 0
    sent_duplicates: int = 0
    send_errors: int = 0
    # poller and processor (from the BatchReports)
    invocations: int = 0
    invocation_errors: int = 0
    poll_errors: int = 0
    received: int = 0
    acknowledged: int = 0
    failed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    quarantined: int = 0
    quarantine_failures: int = 0
    duplicates_suppressed: int = 0
    busy: int = 0
    submissions_completed: int = 0
    events_published: int = 0
    put_calls: int = 0
    records_retried: int = 0
    records_throttled: int = 0
    ledger_failures: int = 0
    deadline_stops: int = 0
    backed_off: int = 0
    backoff_failures: int = 0
    breaker_refused: int = 0
    """Batches the open circuit breaker failed fast."""
    breaker: str = "closed"
    breaker_opened: int = 0
    # consumer
    records_read: int = 0
    duplicate_records: int = 0
    submissions_seen_complete: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    # gauges and faults
    queue_depth: int | None = None
    dlq_depth: int | None = None
    health: str = "starting"
    db_sessions_terminated: int = 0
    db_restarts: int = 0
    ledger: str = "up"
    """``down`` while ``--ledger-outage`` holds the ledger unreachable."""
    ledger_outages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **increments: int) -> None:
        """Add to named integer counters."""
        with self.lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def set(self, **values: Any) -> None:
        """Replace gauges (queue depths, health)."""
        with self.lock:
            for name, value in values.items():
                setattr(self, name, value)

    def add_report(self, report: BatchReport) -> None:
        """Fold one batch's report into the run's totals."""
        publish = report.publish
        with self.lock:
            self.rejected.update(report.rejected)
            self.quarantined += sum(report.quarantined.values())
            self.quarantine_failures += int(report.quarantine_failed)
            self.duplicates_suppressed += report.duplicates_suppressed
            self.busy += report.busy
            self.submissions_completed += report.submissions_completed
            self.events_published += report.events_published
            self.put_calls += publish.calls
            self.records_retried += publish.records_failed
            self.records_throttled += publish.records_throttled
            self.ledger_failures += int(report.ledger_failed)
            self.deadline_stops += int(publish.stopped_by_deadline)
            self.backed_off += report.backed_off
            self.backoff_failures += report.backoff_failures
            self.breaker_refused += int(report.admission is Admission.REFUSED)

    def add_latency(self, milliseconds: float) -> None:
        """One submission's send-to-read latency."""
        with self.lock:
            self.latencies_ms.append(milliseconds)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of every counter, with latency percentiles instead of the samples."""
        with self.lock:
            values = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in ("lock",)}
            latencies = list(self.latencies_ms)
        values.pop("latencies_ms")
        values["rejected"] = dict(sorted(values["rejected"].items()))
        values["elapsed_s"] = time.monotonic() - values.pop("started")
        values["latency_ms"] = {
            "count": len(latencies),
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies) if latencies else None,
        }
        return values
