"""The invocation's time budget, taken from the Lambda context (guarantee 6: bounded invocation).

Inside Lambda the budget is whatever ``context.get_remaining_time_in_millis()`` says each time it is
asked, so the deadline is the platform's own, not a copy taken at the start. Without a context (a
local poller, a benchmark) it counts down from a given budget on a clock, ``time.monotonic`` unless
another is injected: tests drive a virtual clock and decide exactly when the budget runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class RemainingTime(Protocol):
    """The part of the Lambda context the budget needs."""

    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """When the invocation ends, and how close to that end new work may still start.

    Work that cannot be finished and recorded inside ``margin`` must not start, so that the handler
    always has time to record progress and return its partial batch response.
    """

    def __init__(self, remaining_ms: float, margin_ms: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        ends_at = clock() + remaining_ms / 1000
        self._seconds_left: Callable[[], float] = lambda: ends_at - clock()
        self.margin = margin_ms / 1000

    @classmethod
    def from_context(cls, context: object, *, default_ms: int, margin_ms: int) -> Deadline:
        """The context's own countdown; ``default_ms`` from now when there is none (local runs, tests)."""
        deadline = cls(float(default_ms), float(margin_ms))
        getter = getattr(context, "get_remaining_time_in_millis", None)
        if callable(getter):
            deadline._seconds_left = lambda: getter() / 1000
        return deadline

    def remaining(self) -> float:
        """Seconds until the invocation ends."""
        return self._seconds_left()

    def may_start_work(self) -> bool:
        """Whether there is more than the safety margin left."""
        return self.remaining() > self.margin

    def usable(self) -> float:
        """Seconds that may still be spent before the safety margin (never negative)."""
        return max(0.0, self.remaining() - self.margin)
