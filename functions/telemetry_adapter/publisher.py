"""Ordered, at-least-once publishing to Kinesis (guarantee 2: order within a submission).

PutRecords does not keep order among the records of one call when some of them fail, so a call
carries at most one event of any submission: event ``k+1`` is sent only after event ``k`` was
acknowledged. Each call is filled, up to 500 records and 5 MiB, with the next unpublished event of as
many submissions as fit, longest submissions first, so a batch costs close to
``max(longest submission, ceil(events / 500))`` calls. Calls on disjoint submissions run concurrently.

Failed records, and every record of a call that failed as a whole (throttled, timed out, or applied
with its answer lost), are retried alone with exponential backoff and full jitter, while the time
budget lasts and up to a number of attempts; what is left is reported unfinished, and the ledger
keeps the published prefix so a redelivery resumes there. A request Kinesis refuses as a whole for
what one record holds (``ValidationException``) is split into calls of one record, without charging
an attempt, so the record at fault fails alone and its neighbours go on.

Every call has a wall-clock limit (``KINESIS_CALL_TIMEOUT_MS``, or the time the invocation has left when
shorter): the SDK's timeouts bound each socket read, not the call, so an answer that trickles in keeps a
call open for as long as each piece comes inside the read timeout. At its limit the publisher stops
waiting and treats the call as failed, its answer lost: Kinesis may or may not hold its records, which
are retried; a record written twice carries the same id (guarantee 3). The call keeps its thread until
the SDK gives up, and counts against the concurrency meanwhile, so the threads stay
``PUBLISH_CONCURRENCY`` however many calls are abandoned.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from telemetry_adapter.config import PublishSettings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.errors import error_code
from telemetry_adapter.records import EventRecord
from telemetry_adapter.time_budget import KINESIS_CALL_TIMEOUT_MS

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
THROTTLED = "ProvisionedThroughputExceededException"
MALFORMED = "MalformedResponse"
"""The error code given to the records of a call whose answer could not be read."""
REQUEST_REJECTED = frozenset({"ValidationException", "InvalidArgumentException"})
"""Errors for which Kinesis refuses a whole request because of what it holds: sending the same
records again cannot succeed, so the culprit is isolated instead of retried."""


class CallTimedOut(TimeoutError):
    """A call outlived its wall-clock limit: its answer is lost, its records may or may not be stored."""


class KinesisClient(Protocol):
    """The one Kinesis operation the publisher uses (a boto3 client, or a fault injector around one)."""

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Any: ...


@dataclass(slots=True, eq=False)
class PublishJob:
    """The unpublished events of one submission, sent strictly one after another."""

    key: str
    records: Sequence[EventRecord]
    """Records still to publish, in order (the ledger's published prefix already removed)."""
    sent: int = 0
    """How many of ``records`` Kinesis has acknowledged."""
    attempts: int = 0
    """Consecutive failed attempts of the current record."""
    last_error: str | None = None
    """The last Kinesis error code (or exception class) any of this job's records met, for the log
    line of a message that ends unacknowledged."""
    alone: bool = False
    """Send the current record in a call of its own: a request holding it was refused as a whole."""
    given_up: bool = False
    """Its current record failed ``max_attempts`` times in a row; nothing more is sent this invocation."""

    @property
    def done(self) -> bool:
        """Whether every record was acknowledged."""
        return self.sent >= len(self.records)


@dataclass(slots=True)
class PublishStats:
    """What one publish run did: calls, records sent and failed (throttled among them)."""

    calls: int = 0
    records_sent: int = 0
    records_failed: int = 0
    records_throttled: int = 0
    calls_failed: int = 0
    gave_up: int = 0
    """Submissions left unfinished after exhausting their attempts."""
    calls_blocked: int = 0
    """Calls not made because every thread still held a call abandoned past its limit, and none ended
    within one call's time: Kinesis is not answering, which the breaker counts as a failed call."""
    stopped_by_deadline: bool = False
    call_seconds: list[float] = field(default_factory=list)


class OrderedPublisher:
    """Publishes jobs in order per job, packed across jobs, on a small pool of threads."""

    def __init__(
        self,
        client: KinesisClient,
        stream_name: str,
        settings: PublishSettings,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        call_timeout_seconds: float = KINESIS_CALL_TIMEOUT_MS / 1000,
    ) -> None:
        self._client = client
        self._stream_name = stream_name
        self._settings = settings
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._sleep = sleep
        self._call_timeout = call_timeout_seconds
        # Calls run on worker threads even one at a time: only then can the caller stop waiting for one.
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="put")
        self._abandoned: set[Future[Any]] = set()
        """Calls this publisher stopped waiting for that still hold their thread (across invocations)."""
        self._abandoned_lock = threading.Lock()

    def publish(self, jobs: Sequence[PublishJob], deadline: Deadline) -> PublishStats:
        """Publish until every job is done, its attempts are exhausted, or the budget runs out."""
        stats = PublishStats()
        ready = deque(sorted((job for job in jobs if not job.done), key=lambda job: -len(job.records)))
        backing_off: list[tuple[float, int, PublishJob]] = []  # heap of (ready at, tie-break, job)
        tie = itertools.count()
        in_flight: dict[Future[Any], tuple[list[PublishJob], float]] = {}  # call, give up at (monotonic)
        while ready or backing_off or in_flight:
            now = time.monotonic()
            while backing_off and backing_off[0][0] <= now:
                ready.append(heapq.heappop(backing_off)[2])
            while ready and len(in_flight) < self._free_threads():
                if not deadline.may_start_work():
                    stats.stopped_by_deadline = True
                    break
                call = _take_call(ready)
                limit = min(self._call_timeout, max(0.0, deadline.remaining()))
                in_flight[self._pool.submit(self._put, call)] = (call, time.monotonic() + limit)
            if not in_flight:
                if ready and not self._free_threads() and deadline.may_start_work():
                    # Every thread still holds a call this publisher stopped waiting for: wait (at most
                    # one call's time) for one of them to end, or stop.
                    if not self._wait_for_a_thread(min(self._call_timeout, deadline.usable())):
                        stats.calls_blocked += 1
                        break
                    continue
                if not backing_off or not deadline.may_start_work():
                    stats.stopped_by_deadline = stats.stopped_by_deadline or bool(backing_off or ready)
                    break
                self._sleep(min(max(0.0, backing_off[0][0] - time.monotonic()), deadline.usable()))
                continue
            wakes = [give_up_at for _, give_up_at in in_flight.values()]
            if backing_off:
                wakes.append(backing_off[0][0])
            finished, _ = wait(in_flight, timeout=max(0.0, min(wakes) - time.monotonic()), return_when=FIRST_COMPLETED)
            now = time.monotonic()
            answered = [(future, future) for future in finished]
            overdue = [future for future, (_, give_up_at) in in_flight.items() if give_up_at <= now]
            answered += [(future, self._abandon(future)) for future in overdue if future not in finished]
            for future, outcome in answered:
                call, _ = in_flight.pop(future)
                for job, retry in self._settle(call, outcome, stats):
                    if retry:
                        ready_at = time.monotonic() + self._backoff(job.attempts)
                        heapq.heappush(backing_off, (ready_at, next(tie), job))
                    elif not job.done:
                        ready.append(job)
        return stats

    def close(self) -> None:
        """Stop the worker threads (a call still running ends on its own)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _free_threads(self) -> int:
        """Threads not held by a call this publisher stopped waiting for."""
        with self._abandoned_lock:
            return self._settings.max_concurrency - len(self._abandoned)

    def _abandon(self, future: Future[Any]) -> Future[Any]:
        """Stop waiting for a call past its limit; return a stand-in future that failed as a lost answer.

        A call that has not started yet never will; one running keeps its thread, counted as taken,
        until it ends."""
        if not future.cancel():
            with self._abandoned_lock:
                self._abandoned.add(future)
            future.add_done_callback(self._release)
        lost: Future[Any] = Future()
        lost.set_exception(CallTimedOut(f"no answer within {self._call_timeout} s"))
        return lost

    def _release(self, future: Future[Any]) -> None:
        with self._abandoned_lock:
            self._abandoned.discard(future)

    def _wait_for_a_thread(self, seconds: float) -> bool:
        """Wait at most ``seconds`` for an abandoned call to end; return whether a thread is free."""
        with self._abandoned_lock:
            abandoned = set(self._abandoned)
        wait(abandoned, timeout=seconds, return_when=FIRST_COMPLETED)
        return self._free_threads() > 0

    def _put(self, call: list[PublishJob]) -> tuple[float, Any]:
        started = time.perf_counter()
        entries = [
            {"Data": record.data, "PartitionKey": record.partition_key}
            for record in (job.records[job.sent] for job in call)
        ]
        response = self._client.put_records(StreamName=self._stream_name, Records=entries)
        return time.perf_counter() - started, response

    def _settle(
        self, call: list[PublishJob], future: Future[Any], stats: PublishStats
    ) -> list[tuple[PublishJob, bool]]:
        """Apply one call's answer to its jobs; return each job with whether it must back off."""
        stats.calls += 1
        try:
            seconds, response = future.result()
        except Exception as failure:  # the whole call failed: throttled, timed out, or its answer was lost
            stats.calls_failed += 1
            errors: list[str | None] = [error_code(failure)] * len(call)
        else:
            stats.call_seconds.append(seconds)
            answered = record_errors(response, len(call))
            if answered is None:  # an answer that cannot be read says nothing: the whole call failed
                stats.calls_failed += 1
                errors = [MALFORMED] * len(call)
            else:
                errors = answered
        if len(call) > 1 and errors[0] in REQUEST_REJECTED:
            # Kinesis refused the request as a whole for something one record holds (too large, say):
            # the same request would fail forever. Each record goes again in a call of its own, and no
            # attempt is charged, so only the record at fault ends up failing.
            stats.records_failed += len(call)
            for job in call:
                job.alone = True
            return [(job, False) for job in call]
        outcome = []
        for job, error in zip(call, errors, strict=True):
            if error is None:
                job.sent += 1
                job.attempts = 0
                job.alone = False
                stats.records_sent += 1
                outcome.append((job, False))
                continue
            if error in REQUEST_REJECTED:  # this record alone is refused: retrying it cannot help
                job.attempts = self._settings.max_attempts - 1
            stats.records_failed += 1
            if error == THROTTLED:
                stats.records_throttled += 1
            job.last_error = error
            job.attempts += 1
            if job.attempts >= self._settings.max_attempts:
                job.given_up = True
                stats.gave_up += 1
                continue
            outcome.append((job, True))
        return outcome

    def _backoff(self, attempts: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempts-1))]."""
        ceiling = min(self._settings.backoff_cap_ms, self._settings.backoff_base_ms * 2 ** min(attempts - 1, 30))
        return self._rng.uniform(0, ceiling) / 1000


def record_errors(response: Any, expected: int) -> list[str | None] | None:
    """Each record's error code (None for a record Kinesis stored), or None when the answer is
    malformed: not an object, no ``Records`` list of ``expected`` objects, or an entry with neither
    an ``ErrorCode`` nor a ``SequenceNumber`` (a record is stored only when it was given a place)."""
    results = response.get("Records") if isinstance(response, dict) else None
    if not isinstance(results, list) or len(results) != expected:
        return None
    errors: list[str | None] = []
    for result in results:
        if not isinstance(result, dict):
            return None
        code = result.get("ErrorCode")
        if code is None and not result.get("SequenceNumber"):
            return None
        errors.append(None if code is None else str(code))
    return errors


def _take_call(ready: deque[PublishJob]) -> list[PublishJob]:
    """The next call: the current record of as many ready jobs as fit the PutRecords limits."""
    call: list[PublishJob] = []
    size = 0
    while ready and len(call) < MAX_RECORDS_PER_CALL:
        job = ready[0]
        record_size = job.records[job.sent].size
        if call and (job.alone or size + record_size > MAX_BYTES_PER_CALL):
            break
        if job.alone:
            ready.popleft()
            return [job]
        ready.popleft()
        call.append(job)
        size += record_size
    return call
