"""The wall-clock limit's count of abandoned calls: bounded, and never a wedge for good."""

from __future__ import annotations

import threading

import pytest

from telemetry_adapter.wall_clock import CallAbandoned, WallClockLimit


def test_calls_still_stuck_after_the_write_off_period_no_longer_refuse_new_ones() -> None:
    """Two calls stuck on an answer that never ends fill a limiter of two; new calls are refused at
    once (the threads stay bounded), until the stuck ones are older than the write-off period (on a
    virtual clock): then a call on a path that recovered is made and answered. Before, the limiter
    refused every call for as long as the stuck answers took, for good if they never ended."""
    now = [0.0]
    release = threading.Event()
    limiter = WallClockLimit("test", max_abandoned=2, write_off_seconds=60.0, clock=lambda: now[0])
    try:
        for _ in range(2):
            with pytest.raises(CallAbandoned, match="no answer"):
                limiter.call(lambda: release.wait(30), 0.01)
        assert limiter.abandoned == 2
        started: list[int] = []
        with pytest.raises(CallAbandoned, match="still running"):
            limiter.call(lambda: started.append(1), 5.0)
        assert started == []  # refused without starting a thread
        now[0] += 61.0
        assert limiter.call(lambda: "answered", 5.0) == "answered"
        assert limiter.abandoned == 0
    finally:
        release.set()
