"""The chaos run's heartbeat: where the run is, what it did, and whether anything broke yet.

Every ``every`` seconds, between two batches (so it reads the run's counters on the thread that
writes them), one line goes to the terminal: elapsed of total, batches and messages, faults injected
by kind, and the invariant violations seen so far. The violations come from following the stream as
a consumer would, reading only the records written since the last beat: records of a submission that
was never valid, first copies out of sequence or on two shards, copies that differ from the first,
and records that do not match what was sent. Loss can only be judged once the queue has drained, so
it is left to the final check, which reads everything again and is the one the verdict rests on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from chaos.config import STREAM
from chaos.invariants import _identity, _matches
from chaos.scenario import ChaosRun
from devkit.terminal import Output
from telemetry_adapter.submission import Submission

_READ_LIMIT = 10_000


class StreamFollower:
    """Reads a stream's new records, shard by shard, from where the last read stopped."""

    def __init__(self, client: Any, stream: str = STREAM) -> None:
        self._client = client
        self._stream = stream
        self._iterators: dict[str, str] = {}

    def new_records(self) -> list[tuple[str, dict[str, Any]]]:
        """(shard id, parsed record) for every record written since the previous call."""
        import json

        if not self._iterators:
            for shard in self._client.list_shards(StreamName=self._stream)["Shards"]:
                self._iterators[shard["ShardId"]] = self._client.get_shard_iterator(
                    StreamName=self._stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
        found: list[tuple[str, dict[str, Any]]] = []
        for shard in self._iterators:
            while records := self._read(shard):
                found.extend((shard, json.loads(record["Data"])) for record in records)
        return found

    def _read(self, shard: str) -> list[dict[str, Any]]:
        response = self._client.get_records(ShardIterator=self._iterators[shard], Limit=_READ_LIMIT)
        self._iterators[shard] = response.get("NextShardIterator") or self._iterators[shard]
        return list(response["Records"])


class LiveChecks:
    """The invariants that can be judged while the run goes on, counted record by record."""

    def __init__(self, valid: Mapping[str, Submission]) -> None:
        self._valid = valid
        self._first: dict[str, dict[int, dict[str, Any]]] = {}
        self._shard: dict[str, str] = {}
        self.records = 0
        self.violations: Counter[str] = Counter()

    def observe(self, shard: str, record: dict[str, Any]) -> None:
        """Count what is wrong with one record, given the records before it."""
        self.records += 1
        submission_id = str(record.get("submission_id"))
        submission = self._valid.get(submission_id)
        if submission is None:
            self.violations["invalid_published"] += 1
            return
        if self._shard.setdefault(submission_id, shard) not in (shard, ""):
            self.violations["order_violations"] += 1  # a submission spread over shards: counted once
            self._shard[submission_id] = ""
        first = self._first.setdefault(submission_id, {})
        sequence = record.get("sequence")
        if not isinstance(sequence, int) or not 0 <= sequence < len(submission.events):
            self.violations["corrupted"] += 1
        elif sequence in first:
            if _identity(record) != _identity(first[sequence]):
                self.violations["duplicate_mismatches"] += 1
        else:
            if sequence != len(first):
                self.violations["order_violations"] += 1
            first[sequence] = record
            if not _matches(record, submission, sequence):
                self.violations["corrupted"] += 1


def fault_groups(faults: Mapping[str, int]) -> dict[str, int]:
    """Faults injected so far, grouped the way a person reads them."""
    kinesis = ("kinesis_record_failures", "put_records_call_failures", "put_records_lost_answers", "throttle_bursts")
    return {
        "kinesis": sum(faults.get(kind, 0) for kind in kinesis),
        "database": faults.get("database_connection_kills", 0) + faults.get("database_restarts", 0),
        "worker kills": faults.get("worker_kills", 0),
        "duplicate deliveries": faults.get("duplicate_deliveries", 0),
        "budget cuts": faults.get("budget_cuts", 0),
    }


class Heartbeat:
    """Prints a progress line every ``every`` seconds while a :class:`ChaosRun` goes on."""

    def __init__(self, out: Output, *, total_seconds: float, every: float) -> None:
        self._out = out
        self._total = total_seconds
        self._every = every
        self._started = time.monotonic()
        self._last = self._started
        self._following: tuple[ChaosRun, StreamFollower, LiveChecks] | None = None
        self._drain_started: float | None = None

    def attach(self, run: ChaosRun, kinesis: Any) -> None:
        """Follow this run and its stream from now on."""
        self._following = (run, StreamFollower(kinesis), LiveChecks(run.traffic.expected.valid))

    def beat(self, phase: str, *, force: bool = False) -> None:
        """Print a line if ``every`` seconds have passed since the last one (or ``force``)."""
        now = time.monotonic()
        if self._following is None or self._every <= 0 or (not force and now - self._last < self._every):
            return
        self._last = now
        if phase == "drain" and self._drain_started is None:
            self._drain_started = now
        self._out.write(self.line(phase, now - self._started) + "\n")
        self._out.flush()

    def line(self, phase: str, elapsed: float) -> str:
        """The progress line (reads the stream's new records first)."""
        assert self._following is not None, "attach() a run first"
        run, follower, checks = self._following
        for shard, record in follower.new_records():
            checks.observe(shard, record)
        faults = {**run.stats.faults, **run.faults.counts(), **run.saboteur.counts()}
        groups = fault_groups(faults)
        shown = ", ".join(f"{name} {count:,}" for name, count in groups.items() if count)
        violations = sum(checks.violations.values())
        detail = (
            " (" + ", ".join(f"{name} {count}" for name, count in sorted(checks.violations.items())) + ")"
            if violations
            else ""
        )
        where = f"{min(elapsed, self._total):5.0f}/{self._total:.0f} s"
        batches = f"batches {run.stats.batches:,}"
        if phase == "drain":
            draining = time.monotonic() - (self._drain_started or time.monotonic())
            where += f", drain {draining:.0f} s"
            batches += f" + {run.stats.drain_batches:,} in the drain, queue {len(run.queue):,} left"
        return (
            f"[{where}] {batches}, messages {run.queue.sent:,},"
            f" faults {sum(groups.values()):,}" + (f" ({shown})" if shown else "") + f","
            f" violations so far {violations}{detail}, stream {checks.records:,} records"
        )
