"""Stop calling a ledger or a Kinesis stream that keeps failing, and probe it now and then.

During an outage every batch would otherwise spend its invocation on the dependency that is down: a
claim that waits its statement timeout, or PutRecords retried until the attempts run out. The breaker
counts batch outcomes in this process (one per warm Lambda execution environment, nothing shared):
after ``failures_to_open`` consecutive batches in which the ledger failed (claim or outcome) or every
PutRecords call failed, it opens. While it is open a batch fails fast: decoding, validation and
rejections happen as usual, but nothing is claimed or published, and every valid message is a batch
item failure with the code ``breaker_open`` (it gets its backoff visibility like any failed message,
so an open breaker spends no more receives than the outage itself would). After ``cooldown_seconds``
it is half-open: the next batch that has something to claim goes through as a probe; success closes
the breaker, failure opens it again for another cooldown.

A batch that never reaches the dependencies (nothing valid to claim, or no time left to claim it)
says nothing about them and changes nothing; a probe like that leaves the breaker half-open for the
next batch. So does a probe that never called the dependency that opened the breaker (a breaker
Kinesis opened, probed by a batch of duplicates only: the ledger answered, Kinesis was not asked).

A probe is always settled: a probe batch that crashes (an exception escaping the pipeline) counts as a
failed probe (:meth:`CircuitBreaker.abandon`), and a probe not settled within ``cooldown_seconds``
(its invocation died with it) is given up, so the next batch probes. Otherwise one lost probe would
refuse every batch of the execution environment for the rest of its life.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from telemetry_adapter.config import BreakerSettings


class BreakerState(StrEnum):
    """The breaker's state, as the metric, the heartbeat row and the health answer name it."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Admission(StrEnum):
    """What the breaker said to one batch."""

    NOT_ASKED = "not_asked"
    """The batch had nothing to claim, so it never asked."""
    PASSED = "passed"
    """Closed: the batch runs as usual."""
    PROBE = "probe"
    """Half-open: this batch is the one that finds out whether the dependencies are back."""
    REFUSED = "refused"
    """Open (or another batch is probing): fail fast."""


class Outcome(StrEnum):
    """What one batch says about the dependencies."""

    SUCCEEDED = "succeeded"
    LEDGER_FAILED = "ledger_failed"
    KINESIS_FAILED = "kinesis_failed"
    SILENT = "silent"
    """Refused, nothing to claim, or no time to claim: nothing learnt."""

    @property
    def failed(self) -> bool:
        """Whether this outcome counts towards opening the breaker."""
        return self in (Outcome.LEDGER_FAILED, Outcome.KINESIS_FAILED)


class CircuitBreaker:
    """Process-local breaker; thread-safe (the local and chaos runners share a pipeline across threads)."""

    def __init__(self, settings: BreakerSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing_since: float | None = None
        """When the probe now running was admitted; None while no probe runs."""
        self.cause: Outcome | None = None
        """The failure that last opened the breaker (ledger or Kinesis); None while closed."""
        self.times_opened = 0
        """How often it opened (probes that failed included), for the local run's view."""

    @property
    def state(self) -> BreakerState:
        """Closed, open, or half-open once the cooldown has passed."""
        with self._lock:
            return self._state()

    def admit(self) -> Admission:
        """Whether a batch with something to claim may call the ledger and Kinesis."""
        with self._lock:
            state = self._state()
            if state is BreakerState.CLOSED:
                return Admission.PASSED
            if state is BreakerState.HALF_OPEN and not self._probe_running():
                self._probing_since = self._clock()
                return Admission.PROBE
            return Admission.REFUSED

    def abandon(self, admission: Admission) -> BreakerState:
        """Settle a batch that ended without an outcome (an exception escaped it): a probe counts as a
        failed one (open again for a whole cooldown, for the cause that opened it); any other batch says
        nothing about the dependencies."""
        with self._lock:
            if admission is Admission.PROBE and self._probing_since is not None:
                self._probing_since = None
                self._open(self.cause or Outcome.LEDGER_FAILED)
            return self._state()

    def record(self, admission: Admission, outcome: Outcome) -> BreakerState:
        """Take one batch's outcome into account; return the state after it."""
        with self._lock:
            if admission is Admission.PROBE:
                self._probing_since = None
                if outcome.failed:
                    self._open(outcome)
                elif outcome is Outcome.SUCCEEDED:
                    self._close()
            elif admission is Admission.PASSED and self._opened_at is None:
                # A batch admitted while closed; one that ends after another batch opened the breaker
                # (threads of a local run) changes nothing.
                if outcome.failed:
                    self._failures += 1
                    if self._settings.failures_to_open and self._failures >= self._settings.failures_to_open:
                        self._open(outcome)
                elif outcome is Outcome.SUCCEEDED:
                    self._failures = 0
            return self._state()

    def _probe_running(self) -> bool:
        """Whether a probe was admitted and has not been settled, nor lost (older than a cooldown)."""
        if self._probing_since is None:
            return False
        return self._clock() - self._probing_since < self._settings.cooldown_seconds

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._settings.cooldown_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def _open(self, cause: Outcome) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self.cause = cause
        self.times_opened += 1

    def _close(self) -> None:
        self._opened_at = None
        self._failures = 0
        self.cause = None


def batch_outcome(
    admission: Admission,
    *,
    ledger_failed: bool,
    claim_skipped: bool,
    put_calls: int,
    records_sent: int,
    cause: Outcome | None,
) -> Outcome:
    """What a batch says about the dependencies: the ledger failed (claim or outcome), every
    PutRecords call failed (calls made, no record stored), it reached them and they answered, or
    nothing (never admitted, refused, or stopped by the budget before the claim).

    ``cause`` is what opened the breaker: a probe of a breaker Kinesis opened that made no PutRecords
    call (duplicates only, or submissions busy elsewhere) learnt nothing about Kinesis, so it is silent
    and the next batch probes; were it a success, it would close the breaker on a stream still down."""
    if admission in (Admission.NOT_ASKED, Admission.REFUSED) or claim_skipped:
        return Outcome.SILENT
    if ledger_failed:
        return Outcome.LEDGER_FAILED
    if put_calls > 0 and records_sent == 0:
        return Outcome.KINESIS_FAILED
    if admission is Admission.PROBE and cause is Outcome.KINESIS_FAILED and put_calls == 0:
        return Outcome.SILENT
    return Outcome.SUCCEEDED
