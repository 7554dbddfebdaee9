"""A rate limit for sending: at most ``per_second`` messages per second, on average, from the start.

Redrives and replays send into the queue the processor reads; pacing them keeps a fix that turns out
not to be one from sending everything round again at once, and leaves room for live traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Blocks before each send until the rate allows it. The clock and sleep are the standard ones unless
    given (the tests count the sleeps it asks for instead of measuring time)."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not per_second > 0:
            raise ValueError("per_second must be positive")
        self._interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def take(self, count: int = 1) -> None:
        """Wait until ``count`` more messages may go (the first go at once), and book them."""
        now = self._clock()
        if self._next is None or self._next < now:
            self._next = now
        wait = self._next - now
        if wait > 0:
            self._sleep(wait)
        self._next += count * self._interval
