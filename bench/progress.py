"""Where a long ``make bench`` is: "case i of n", the time so far and an estimate of the time left.

The run is planned up front as a list of steps, each with a key (network mode, case, batch size) and
a first guess of its duration. As steps finish, the estimate of each remaining step is, in order of
preference: the median of the finished steps with the same key; the same case in the same mode at
another size, scaled linearly by size; the same case and size in the other mode; the first guess.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One planned unit of work."""

    mode: str
    case: str
    size: int
    guess_s: float
    """First guess of its duration, used until a similar step has been timed."""


class Progress:
    """Counts the planned steps and prints one line per finished step."""

    def __init__(self, plan: list[Step], log: Callable[[str], None] | None = None) -> None:
        self._plan = plan
        self._log = log or _stderr
        self._done = 0
        self._started = time.monotonic()
        self._timed: dict[tuple[str, str, int], list[float]] = defaultdict(list)

    @property
    def total(self) -> int:
        """Planned steps."""
        return len(self._plan)

    def finished(self, step: Step, seconds: float, detail: str) -> None:
        """Record one step's duration and print where the run is."""
        self._timed[step.mode, step.case, step.size].append(seconds)
        self._done += 1
        elapsed = time.monotonic() - self._started
        left = sum(self.estimate(remaining) for remaining in self._plan[self._done :])
        width = len(str(self.total))
        self._log(
            f"case {self._done:>{width}} of {self.total}  {detail}  "
            f"[{_clock(elapsed)} elapsed, about {_clock(left)} left]"
        )

    def estimate(self, step: Step) -> float:
        """The expected duration of ``step`` from what has been timed so far."""
        same = self._timed.get((step.mode, step.case, step.size))
        if same:
            return statistics.median(same)
        scaled = [
            statistics.median(values) * step.size / size
            for (mode, case, size), values in self._timed.items()
            if mode == step.mode and case == step.case and size > 0 and values
        ]
        if scaled and step.size > 0:
            return scaled[-1]
        other = [
            statistics.median(values)
            for (_, case, size), values in self._timed.items()
            if case == step.case and size == step.size and values
        ]
        return other[0] if other else step.guess_s


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
