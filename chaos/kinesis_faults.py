"""Faults at the Kinesis client boundary, layered around a real (moto) client.

The publisher sees a ``KinesisClient``; the stack below it is, outermost first:

* :class:`CallHook`: after a call Kinesis acknowledged, runs the action armed for this batch (kill the
  database connections, restart the database, or, in a worker process, wait to be SIGKILLed);
* :class:`ThrottleBursts`: now and then, every record of every call is throttled for a short while,
  the way a hot shard behaves;
* :class:`devkit.kinesis.FlakyKinesis`: independent record failures, whole calls that fail, and calls
  applied whose answer is lost.

Everything that passes reaches the real client, so the stream holds exactly what Kinesis kept.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from chaos.config import FaultRates
from devkit.kinesis import FlakyKinesis

THROTTLED = "ProvisionedThroughputExceededException"


class ThrottleBursts:
    """Starts a throttling burst with probability ``rate`` per call; during a burst nothing is written."""

    def __init__(self, client: Any, *, rate: float, burst_seconds: tuple[float, float], seed: int) -> None:
        self._client = client
        self.rate = rate
        self._burst_seconds = burst_seconds
        self._rng = random.Random(seed)  # noqa: S311 - fault schedule, not cryptography
        self._lock = threading.Lock()
        self._until = 0.0
        self.bursts = 0
        self.records_throttled = 0

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Any:
        """PutRecords, or an all-throttled answer while a burst lasts."""
        with self._lock:
            now = time.monotonic()
            if now >= self._until and self._rng.random() < self.rate:
                self._until = now + self._rng.uniform(*self._burst_seconds)
                self.bursts += 1
            throttled = now < self._until
            if throttled:
                self.records_throttled += len(Records)
        if throttled:
            answer = {"ErrorCode": THROTTLED, "ErrorMessage": "injected: throttling burst"}
            return {"FailedRecordCount": len(Records), "Records": [dict(answer) for _ in Records]}
        return self._client.put_records(StreamName=StreamName, Records=Records)


class CallHook:
    """Runs one armed action after the n-th acknowledged PutRecords call from now (one-shot)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._armed: tuple[int, Callable[[], None]] | None = None

    def arm(self, after_calls: int, action: Callable[[], None]) -> None:
        """Run ``action`` right after the ``after_calls``-th acknowledged call (1 = the next one)."""
        with self._lock:
            self._armed = (max(1, after_calls), action)

    def disarm(self) -> bool:
        """Forget an action that has not run; return whether one was pending."""
        with self._lock:
            pending, self._armed = self._armed is not None, None
        return pending

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Any:
        """PutRecords; then, if this was the armed call and Kinesis kept a record, the action."""
        response = self._client.put_records(StreamName=StreamName, Records=Records)
        if any("ErrorCode" not in result for result in response["Records"]):
            action = None
            with self._lock:
                if self._armed is not None:
                    remaining, armed_action = self._armed
                    if remaining <= 1:
                        action, self._armed = armed_action, None
                    else:
                        self._armed = (remaining - 1, armed_action)
            if action is not None:
                action()
        return response


class KinesisFaults:
    """The whole fault stack around one client, with its rates adjustable and its counts readable."""

    def __init__(self, client: Any, rates: FaultRates, *, seed: int) -> None:
        self.flaky = FlakyKinesis(client, seed=seed)
        self.bursts = ThrottleBursts(self.flaky, rate=0.0, burst_seconds=(0.1, 0.4), seed=seed + 1)
        self.hook = CallHook(self.bursts)
        self.set_rates(rates)

    @property
    def client(self) -> CallHook:
        """What the publisher calls."""
        return self.hook

    def set_rates(self, rates: FaultRates) -> None:
        """Change the per-call rates (``FaultRates().scaled(0)`` for a fault-free drain)."""
        self.flaky.record_failure_rate = rates.record_failure
        self.flaky.call_failure_rate = rates.call_failure
        self.flaky.lost_answer_rate = rates.lost_answer
        self.bursts.rate = rates.throttle_burst

    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        faults = self.flaky.faults
        return {
            "kinesis_record_failures": faults.records_failed,
            "kinesis_records_throttled": faults.records_throttled + self.bursts.records_throttled,
            "throttle_bursts": self.bursts.bursts,
            "put_records_call_failures": faults.calls_failed,
            "put_records_lost_answers": faults.calls_applied_but_lost,
        }
