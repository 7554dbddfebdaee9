"""Timing primitives: a monotonic stopwatch and medians of repeated samples."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable


def seconds(action: Callable[[], object]) -> float:
    """Wall time of one call of ``action``."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


class Samples:
    """Repeated samples per (case, batch size); medians resist the odd run a neighbour slowed down."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, int], list[float]] = defaultdict(list)

    def add(self, case: str, size: int, value: float) -> None:
        """Record one sample."""
        self._values[case, size].append(value)

    def median(self, case: str, size: int) -> float | None:
        """Median of the samples, or None when the case was not run at that size."""
        values = self._values.get((case, size))
        return statistics.median(values) if values else None

    def count(self, case: str, size: int) -> int:
        """How many samples were taken."""
        return len(self._values.get((case, size), ()))
