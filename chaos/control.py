"""Steering a chaos run from outside: stop early, skip the drain, watch progress.

Ctrl-C and SIGTERM only set events here; the run checks them between two batches, so it never
abandons a batch half-handled and always gets to the final check and the JSON. The first request
ends the fault phase (the fault-free drain still runs, so the figures stay meaningful); a second one,
or SIGTERM, skips the drain as well.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


class Observer(Protocol):
    """Something that follows a run's progress (the heartbeat)."""

    def attach(self, run: Any, kinesis: Any) -> None:
        """Start following ``run``, whose records go to the stream behind ``kinesis``."""

    def beat(self, phase: str, *, force: bool = False) -> None:
        """Called between two batches, with the phase (``faults`` or ``drain``)."""


@dataclass
class RunControl:
    """Stop and abort requests, and the observer, shared by the CLI and the run."""

    observer: Observer | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    """End the fault phase now."""
    abort: threading.Event = field(default_factory=threading.Event)
    """Skip the drain too."""
    reason: str = ""

    def request(self, reason: str, *, abort: bool = False) -> None:
        """A stop request (Ctrl-C: stop, then abort on the second; SIGTERM: abort at once)."""
        self.reason = self.reason or reason
        if abort or self.stop.is_set():
            self.abort.set()
        self.stop.set()

    @property
    def interrupted(self) -> bool:
        """Whether the run was asked to stop before its time."""
        return self.stop.is_set()

    def tick(self, phase: str) -> None:
        """Between two batches: let the observer report."""
        if self.observer is not None:
            self.observer.beat(phase)
