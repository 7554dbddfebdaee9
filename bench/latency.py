"""The modelled network: a fixed round-trip time on every PutRecords call and every DynamoDB call.

Kinesis and DynamoDB here are moto in our own process, so a call costs CPU and no waiting; in AWS
every call is a network round trip. The delay is a botocore ``before-send`` handler. For Kinesis it
sits on a fresh default boto3 session: every client created from it afterwards (the handler's own
``runtime.kinesis_client()``, the bench's clients) copies the handler, so every case pays the same per
call. Powertools' idempotency layer builds its DynamoDB client from a session of its own, so that
delay is attached to the client itself (:func:`delay_calls`). Either way it is registered first, so it
runs before moto's stub answers the request. ``time.sleep`` releases the interpreter lock, so
concurrent calls (``PUBLISH_CONCURRENCY=4``) overlap their waits as they would on a real network.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

PUT_RECORDS_EVENT = "before-send.kinesis.PutRecords"
DYNAMODB_EVENT = "before-send.dynamodb"
_HANDLER_ID = "bench-modelled-kinesis-rtt"


@dataclass(frozen=True)
class NetworkModel:
    """The assumed round-trip times (assumptions, not measurements)."""

    kinesis_rtt_ms: float = 10.0
    """Per PutRecords call: a typical in-region round trip from Lambda to Kinesis."""
    sql_rtt_ms: float = 1.0
    """Per PostgreSQL round trip: Lambda to RDS Proxy to the database, in the same region."""
    dynamodb_rtt_ms: float = 5.0
    """Per DynamoDB call from Lambda in the same region ("single-digit milliseconds", AWS says)."""


class CallDelay:
    """A botocore event handler that sleeps ``seconds`` and counts the calls it delayed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self.calls = 0
        self._waiting = 0
        self.most_waiting = 0
        """The most calls seen waiting at once (concurrent calls overlap their waits)."""

    def __call__(self, **_: Any) -> None:
        """Wait one round trip, then let the request go on (returning None lets moto answer it)."""
        with self._lock:
            self._waiting += 1
            self.most_waiting = max(self.most_waiting, self._waiting)
        try:
            if self.seconds > 0:
                time.sleep(self.seconds)
        finally:
            with self._lock:
                self._waiting -= 1
                self.calls += 1


class OperationCounter:
    """A botocore ``before-send`` handler that counts requests by operation (``PutItem``, ``PutRecords``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __call__(self, event_name: str = "", **_: Any) -> None:
        """Count the request named by the event (``before-send.<service>.<Operation>``)."""
        with self._lock:
            self.calls[event_name.rsplit(".", 1)[-1]] += 1

    def total(self) -> int:
        """Requests counted, of every operation."""
        return sum(self.calls.values())


def attach(client: Any, event: str, handler: Any, unique_id: str) -> None:
    """Register ``handler`` first on ``client``'s events (before moto's stub answers the request)."""
    client.meta.events.register_first(event, handler, unique_id=unique_id)


def delay_calls(client: Any, delay: CallDelay, event: str = DYNAMODB_EVENT) -> None:
    """Make every request ``client`` sends on ``event`` wait ``delay`` (idempotent per client)."""
    attach(client, event, delay, f"bench-delay-{id(delay)}")


@contextlib.contextmanager
def kinesis_latency(rtt_ms: float) -> Iterator[CallDelay]:
    """Install a fresh default boto3 session whose PutRecords calls wait ``rtt_ms``; restore on exit.

    Only clients created inside the block get the delay: build them (and the handler's cached
    pipeline) after entering it.
    """
    saved = boto3.DEFAULT_SESSION
    delay = CallDelay(rtt_ms / 1000)
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register_first(PUT_RECORDS_EVENT, delay, unique_id=_HANDLER_ID)
    try:
        yield delay
    finally:
        session.events.unregister(PUT_RECORDS_EVENT, unique_id=_HANDLER_ID)
        boto3.DEFAULT_SESSION = saved
