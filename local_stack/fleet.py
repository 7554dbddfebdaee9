"""The sensor fleet: N devices with stable ids, each sending one submission per interval to the queue.

Built on :mod:`devkit.fleet` (realistic submissions, the sensors' known defects, hostile bodies). A
share of submissions is broken (a known defect or a hostile body) and a share of valid ones is sent
again later, as a sensor does when it never saw the answer to its first send. What was sent is kept
in a :class:`SentLog` so the consumer can tell which events must appear, and when they were sent.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from devkit import fleet
from local_stack.tally import Tally

_KINDS = fleet.DEFECTS + fleet.HOSTILE
_RECENT_PER_DEVICE = 3
_MAX_SENDER_THREADS = 4


@dataclass
class SentLog:
    """Valid submissions sent (events expected, first send time, the SQS message id of each copy) and
    ids of broken ones."""

    expected: dict[str, int] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)
    broken_ids: set[str] = field(default_factory=set)
    copies: dict[str, set[str]] = field(default_factory=dict)
    """Submission id -> the message ids SQS gave its sends (the first and every re-send)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def valid(self, submission_id: str, events: int) -> None:
        """A new valid submission is on its way (wall-clock send time, compared with read time)."""
        with self.lock:
            self.expected[submission_id] = events
            self.sent_at[submission_id] = time.time()  # registered before the send, so it precedes any read

    def copy_sent(self, submission_id: str, message_id: str) -> None:
        """SQS took a copy of a valid submission under ``message_id``."""
        with self.lock:
            self.copies.setdefault(submission_id, set()).add(message_id)

    def forget(self, submission_id: str) -> None:
        """The send failed: nothing is expected of this submission."""
        with self.lock:
            self.expected.pop(submission_id, None)
            self.sent_at.pop(submission_id, None)

    def broken(self, submission_id: str) -> None:
        """A broken submission whose id is still a UUID: none of its events may ever appear."""
        with self.lock:
            self.broken_ids.add(submission_id)

    def lookup(self, submission_id: str) -> tuple[int | None, float | None, bool]:
        """Expected events, send time and whether the id belongs to a broken submission."""
        with self.lock:
            return (
                self.expected.get(submission_id),
                self.sent_at.get(submission_id),
                submission_id in self.broken_ids,
            )


@dataclass
class _Device:
    device_id: str
    recent: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=_RECENT_PER_DEVICE))
    """(submission id, body) of the device's last valid submissions, for re-sends."""


class FleetEmulator:
    """Sender threads, each driving a slice of the devices on a fixed schedule until stopped."""

    def __init__(
        self,
        sqs_factory: Any,
        queue_url: str,
        *,
        devices: int,
        interval: float,
        broken_rate: float,
        duplicate_rate: float,
        tally: Tally,
        seed: int | None = None,
    ) -> None:
        self._sqs_factory = sqs_factory
        self._queue_url = queue_url
        self._devices = [_Device(device_id) for device_id in fleet.device_ids(devices)]
        self._interval = interval
        self._broken_rate = broken_rate
        self._duplicate_rate = duplicate_rate
        self._tally = tally
        # A fresh seed per run unless given: submission ids must never repeat across runs that share a
        # database, or the ledger would rightly suppress them all as duplicates.
        self.seed = seed if seed is not None else uuid.uuid4().int & 0xFFFF_FFFF
        self.log = SentLog()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start sending."""
        count = min(_MAX_SENDER_THREADS, len(self._devices))
        for index in range(count):
            thread = threading.Thread(target=self._run, args=(index, count), name=f"fleet-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sending and wait for the senders to finish their current message."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, index: int, count: int) -> None:
        rng = random.Random(self.seed * 1_000 + index)  # noqa: S311 - test data, not cryptography
        sqs = self._sqs_factory()
        start = time.monotonic()
        total = len(self._devices)
        schedule = [(start + self._interval * position / total, position) for position in range(index, total, count)]
        heapq.heapify(schedule)
        while not self._stop.is_set():
            due, position = schedule[0]
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            heapq.heapreplace(schedule, (due + self._interval, position))
            self._tick(rng, sqs, self._devices[position])

    def _tick(self, rng: random.Random, sqs: Any, device: _Device) -> None:
        """One submission of ``device`` (valid or broken), and maybe a re-send of one of its recent ones."""
        document = fleet.submission(rng, device.device_id)
        if rng.random() < self._broken_rate:
            kind = rng.choice(_KINDS)
            if kind in fleet.DEFECTS:
                if self._send(sqs, fleet.encode(fleet.with_defect(document, kind))):
                    self.log.broken(document["submission_id"])
                    self._tally.add(sent_defective=1)
            elif self._send(sqs, fleet.hostile_body(kind)):
                self._tally.add(sent_hostile=1)
        else:
            submission_id, body = document["submission_id"], fleet.encode(document)
            self.log.valid(submission_id, fleet.expected_event_count(document))
            message_id = self._send(sqs, body)
            if message_id:
                self.log.copy_sent(submission_id, message_id)
                device.recent.append((submission_id, body))
                self._tally.add(sent_valid=1)
            else:
                self.log.forget(submission_id)
        if device.recent and rng.random() < self._duplicate_rate:
            submission_id, body = rng.choice(device.recent)
            message_id = self._send(sqs, body)
            if message_id:
                self.log.copy_sent(submission_id, message_id)
                self._tally.add(sent_duplicates=1)

    def _send(self, sqs: Any, body: str) -> str | None:
        """Send one body; its message id, or None when the queue refused it."""
        try:
            response = sqs.send_message(QueueUrl=self._queue_url, MessageBody=body)
        except Exception:  # a sensor logs and moves on; the run reports how many sends failed
            self._tally.add(send_errors=1)
            return None
        self._tally.add(sent=1)
        return str(response.get("MessageId") or "") or None
