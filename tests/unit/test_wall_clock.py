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


def test_calls_made_together_share_the_bound() -> None:
    """Five callers at once on a limiter of two, each call hanging: two start, three are refused at once.
    Counted only once abandoned, all five would have started (the backoff makes up to ten calls at once)."""
    limiter = WallClockLimit("test", max_abandoned=2)
    release = threading.Event()
    entered = threading.Semaphore(0)
    started: list[int] = []
    refused: list[str] = []
    answers: list[object] = []

    def hang() -> bool:
        started.append(1)
        entered.release()
        return release.wait(30)

    def caller() -> None:
        try:
            answers.append(limiter.call(hang, 30.0))
        except CallAbandoned as error:
            refused.append(str(error))

    callers = [threading.Thread(target=caller) for _ in range(5)]
    try:
        for thread in callers[:2]:
            thread.start()
        assert all(entered.acquire(timeout=10) for _ in range(2))  # both calls are running, awaited
        for thread in callers[2:]:
            thread.start()
            thread.join(10)
        assert len(refused) == 3
        assert all("2 awaited" in message for message in refused)
    finally:
        release.set()
        for thread in callers:
            thread.join(10)
    assert (len(started), answers) == (2, [True, True])  # none of the three refused started a call
    assert limiter.call(lambda: "free again", 5.0) == "free again"
