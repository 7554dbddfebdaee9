"""Lambda-shaped SQS events and contexts, as the event source mapping delivers them."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:submissions"


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    """One record of an SQS event."""
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"handle-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def sqs_event(bodies: Iterable[str]) -> dict[str, Any]:
    """An SQS event holding one record per body."""
    return {"Records": [sqs_record(body) for body in bodies]}


class VirtualClock:
    """A clock that moves only when told to: tests decide when a deadline passes, whatever the load.

    ``now`` stands in for ``time.monotonic`` and ``sleep`` for ``time.sleep`` (it advances the clock
    instead of waiting). Thread-safe, so fault injectors on publisher threads may advance it.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds on the virtual clock."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` on the virtual clock: returns at once, ``seconds`` later."""
        self.advance(seconds)


@dataclass
class LambdaContext:
    """A Lambda context whose deadline is ``timeout_ms`` after its creation, on ``clock``.

    The clock is real time unless a :class:`VirtualClock`'s ``now`` is given.
    """

    timeout_ms: int = 60_000
    function_name: str = "telemetry-adapter-processor"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    clock: Callable[[], float] = time.monotonic
    started: float | None = None

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    @property
    def invoked_function_arn(self) -> str:
        """ARN like the real one (Powertools logs it)."""
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        """Always $LATEST here."""
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left until the deadline."""
        assert self.started is not None
        return max(0, int(self.timeout_ms - (self.clock() - self.started) * 1000))
