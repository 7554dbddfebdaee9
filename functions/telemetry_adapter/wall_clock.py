"""A wall-clock limit for one blocking SDK call made after a batch's outcome (hand-back, backoff, quarantine).

botocore's ``connect_timeout`` and ``read_timeout`` bound the connect and each socket read, not the call:
an answer that trickles in, a slice inside every read timeout, holds a call for as long as the path
cares to, past the time the invocation kept for it (``time_budget``'s ``*_CALL_TIMEOUT_MS``). So the
call runs on a daemon thread of its own and the caller waits at most its limit; past it, the caller
stops waiting and the call counts as failed (:class:`CallAbandoned`), whatever it does later. The
callers choose what failed means so that a late success is harmless: a copy handed back late is a
duplicate the ledger suppresses, a visibility set late is the backoff it was meant to be, a quarantine
object stored late is kept while its messages are redelivered and decided again.

An abandoned call keeps its thread until the SDK gives up. At most ``max_abandoned`` calls per limiter
count at a time, those awaited and those abandoned alike (calls made together, as the backoff's, take
one each as they start): with that many, a new call is not started but fails at once, so a path that
keeps trickling costs a bounded number of threads, never one per batch. An abandoned call
still running ``write_off_seconds`` after it was abandoned stops counting (its thread runs on until its
answer ends): a path that trickled and then recovered must not leave the limiter refusing every call
of a warm environment for as long as the stuck answers take, which for a slow enough trickle is
forever. The threads stay bounded per write-off period (``max_abandoned`` each), not in all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_MAX_ABANDONED = 4
"""Abandoned calls one limiter lets run on before it refuses new ones."""
DEFAULT_WRITE_OFF_SECONDS = 60.0
"""How long after it was abandoned a call still running stops counting against ``max_abandoned``:
far beyond any answer a healthy endpoint gives (the calls' limits are a few seconds)."""


class CallAbandoned(TimeoutError):
    """The call outlived its wall-clock limit (or too many earlier ones still run): it counts as failed,
    its outcome unknown."""


class _Call(Generic[T]):
    """One call on its thread: its result or error once it ends. ``ended`` and ``abandoned`` change
    under the limiter's lock, so a call ends either awaited or counted, never both or neither."""

    def __init__(self, call: Callable[[], T], limiter: WallClockLimit) -> None:
        self._call = call
        self._limiter = limiter
        self.done = threading.Event()
        self.ended = False
        self.abandoned = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as error:  # handed to the caller, who re-raises it
            self.error = error
        finally:
            self._limiter._ended(self)
            self.done.set()


class WallClockLimit:
    """Runs calls with a wall-clock limit each, keeping count of the calls it stopped waiting for."""

    def __init__(
        self,
        name: str,
        *,
        max_abandoned: int = DEFAULT_MAX_ABANDONED,
        write_off_seconds: float = DEFAULT_WRITE_OFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = name
        self._max_abandoned = max_abandoned
        self._write_off_seconds = write_off_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._abandoned_at: dict[int, float] = {}
        """When each counted abandoned call (by its id) was abandoned."""
        self._awaited = 0
        """Calls started whose callers are still waiting for them."""

    @property
    def abandoned(self) -> int:
        """Abandoned calls still running and still counted (tests read it)."""
        with self._lock:
            self._write_off()
            return len(self._abandoned_at)

    def _write_off(self) -> None:
        """Stop counting abandoned calls older than the write-off period (under the lock)."""
        oldest_kept = self._clock() - self._write_off_seconds
        for key in [key for key, at in self._abandoned_at.items() if at <= oldest_kept]:
            del self._abandoned_at[key]

    def call(self, call: Callable[[], T], seconds: float) -> T:
        """``call()``'s result, or its exception, if it ends within ``seconds``; otherwise raise
        :class:`CallAbandoned` and let it run on, counted, on its daemon thread."""
        with self._lock:
            self._write_off()
            if len(self._abandoned_at) + self._awaited >= self._max_abandoned:
                raise CallAbandoned(
                    f"{len(self._abandoned_at)} earlier {self._name} calls still running, {self._awaited} awaited"
                )
            self._awaited += 1
        running: _Call[T] = _Call(call, self)
        try:
            threading.Thread(target=running.run, name=f"{self._name}-call", daemon=True).start()
        except BaseException:
            with self._lock:
                self._awaited -= 1
            raise
        running.done.wait(max(seconds, 0.0))
        with self._lock:
            self._awaited -= 1
            if not running.ended:
                running.abandoned = True
                self._abandoned_at[id(running)] = self._clock()
                raise CallAbandoned(f"no answer within {seconds:.3f} s")
        if running.error is not None:
            raise running.error
        return running.result  # type: ignore[return-value]  # set when the call ended without an error

    def _ended(self, running: _Call[T]) -> None:
        with self._lock:
            running.ended = True
            if running.abandoned:
                self._abandoned_at.pop(id(running), None)
