"""An in-memory SQS queue with the semantics the processor relies on.

Chosen over a moto SQS queue because the driver needs exact control of time and receive counts in a
bounded test. Like SQS with a Lambda event source and ``ReportBatchItemFailures``: a received message
is invisible for the visibility timeout; it is deleted when its batch acknowledges it; otherwise (a
batch item failure, or the invocation crashed) it becomes visible again when the timeout ends, and
after ``max_receives`` receives a message that still fails moves to the dead-letter queue.
"""

from __future__ import annotations

import heapq
import itertools
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devkit.lambda_shapes import sqs_record


@dataclass
class Message:
    """One message: its body, whether it is a valid submission, and how often it was received."""

    body: str
    valid: bool
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    receives: int = 0

    def record(self) -> dict[str, Any]:
        """The SQS event record the Lambda would get for this receive."""
        return sqs_record(self.body, self.message_id, self.receives)


class RedeliveryQueue:
    """Visible messages in arrival order, invisible ones until their timeout, and a DLQ."""

    def __init__(self, *, visibility_seconds: float, max_receives: int) -> None:
        self.visibility_seconds = visibility_seconds
        self.max_receives = max_receives
        self._visible: list[tuple[float, int, Message]] = []  # heap of (visible at, arrival, message)
        self._arrival = itertools.count()
        self._in_flight: dict[str, Message] = {}
        self.dead_letters: list[Message] = []
        self.sent = 0
        self.redeliveries = 0

    def send(self, body: str, *, valid: bool) -> Message:
        """Enqueue a new message, visible now."""
        message = Message(body, valid)
        heapq.heappush(self._visible, (0.0, next(self._arrival), message))
        self.sent += 1
        return message

    def receive(self, limit: int) -> list[Message]:
        """Up to ``limit`` visible messages; each becomes invisible until settled."""
        now = time.monotonic()
        batch: list[Message] = []
        while self._visible and self._visible[0][0] <= now and len(batch) < limit:
            message = heapq.heappop(self._visible)[2]
            message.receives += 1
            self.redeliveries += message.receives > 1
            self._in_flight[message.message_id] = message
            batch.append(message)
        return batch

    def settle(self, batch: Iterable[Message], failed_ids: Iterable[str]) -> None:
        """Delete acknowledged messages; failed ones come back after the visibility timeout, or DLQ."""
        failed = set(failed_ids)
        visible_at = time.monotonic() + self.visibility_seconds
        for message in batch:
            self._in_flight.pop(message.message_id, None)
            if message.message_id not in failed:
                continue
            if message.receives >= self.max_receives:
                self.dead_letters.append(message)
            else:
                heapq.heappush(self._visible, (visible_at, next(self._arrival), message))

    def seconds_until_visible(self) -> float | None:
        """How long until the next message is visible (0 if one is now), or None if the queue is empty."""
        if not self._visible:
            return None
        return max(0.0, self._visible[0][0] - time.monotonic())

    def __len__(self) -> int:
        """Messages not yet deleted or dead-lettered."""
        return len(self._visible) + len(self._in_flight)
