"""The invocation's time budget, taken from the Lambda context (guarantee 6: bounded invocation)."""

from __future__ import annotations

import time
from typing import Protocol


class RemainingTime(Protocol):
    """The part of the Lambda context the budget needs."""

    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """When the invocation ends, and how close to that end new work may still start.

    Work that cannot be finished and recorded inside ``margin`` must not start, so that the handler
    always has time to record progress and return its partial batch response.
    """

    def __init__(self, remaining_ms: float, margin_ms: float) -> None:
        self._now = time.monotonic
        self.ends_at = self._now() + remaining_ms / 1000
        self.margin = margin_ms / 1000

    @classmethod
    def from_context(cls, context: object, *, default_ms: int, margin_ms: int) -> Deadline:
        """Budget from a Lambda context; ``default_ms`` when there is none (local runs, tests)."""
        getter = getattr(context, "get_remaining_time_in_millis", None)
        remaining = getter() if callable(getter) else default_ms
        return cls(float(remaining), float(margin_ms))

    def remaining(self) -> float:
        """Seconds until the invocation ends."""
        return self.ends_at - self._now()

    def may_start_work(self) -> bool:
        """Whether there is more than the safety margin left."""
        return self.remaining() > self.margin

    def usable(self) -> float:
        """Seconds that may still be spent before the safety margin (never negative)."""
        return max(0.0, self.remaining() - self.margin)
