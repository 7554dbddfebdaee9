"""The SQS and S3 calls made after a batch's outcome (hand-back, backoff, quarantine) end within their
wall-clock limit, though botocore's timeouts bound each socket read only. A loopback endpoint answers
every request one byte at a time (each read well inside the read timeout, the answer seconds late); the
real boto3 clients the processor builds call it. Nothing here measures time: a call past its limit
counts as failed, which an endpoint that finally answers "success" could not otherwise cause."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from telemetry_adapter.backoff import VisibilityBackoff, VisibilityClient
from telemetry_adapter.config import RetrySettings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.handback import Copy, QueueHandBack, sqs_client
from telemetry_adapter.message_log import MessageIdentity
from telemetry_adapter.quarantine import QuarantineStore, Rejection, s3_client
from telemetry_adapter.rejections import Reason
from telemetry_adapter.wall_clock import CallAbandoned, WallClockLimit

LIMIT_SECONDS = 0.3
ANSWER = b'{"Successful":[{"Id":"0","MessageId":"m","MD5OfMessageBody":"x"}],"Failed":[]}'
SLICE_SECONDS = 0.1
"""One byte of the answer every this long: the answer takes some 10 s, each read 0.1 s."""


class TricklingEndpoint:
    """HTTP on 127.0.0.1 that answers every request 200 with ``ANSWER``, one byte per ``SLICE_SECONDS``."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.requests = 0
        self._spawn(self._accept)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set() and self.requests < 16:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                continue
            self.requests += 1
            self._spawn(self._answer, connection)

    def _answer(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(2.0)
            connection.recv(1 << 20)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: %d\r\n\r\n"
            for byte in (head % len(ANSWER)) + ANSWER:
                if self._stop.wait(SLICE_SECONDS):
                    return
                connection.sendall(bytes([byte]))

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(2.0)


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[TricklingEndpoint]:
    served = TricklingEndpoint()
    for name, value in {
        "AWS_ENDPOINT_URL": served.url,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)
    yield served
    served.stop()


def test_a_hand_back_call_past_its_limit_counts_its_copies_as_not_taken(endpoint: TricklingEndpoint) -> None:
    handback = QueueHandBack(sqs_client(), f"{endpoint.url}/123456789012/q", call_seconds=LIMIT_SECONDS)
    taken, errors = handback.send([Copy("m-1", "{}")])
    assert (taken, errors) == (set(), {"m-1": "CallAbandoned"})
    assert endpoint.requests == 1


def test_a_backoff_call_past_its_limit_is_a_backoff_failure(endpoint: TricklingEndpoint) -> None:
    backoff = VisibilityBackoff(
        cast(VisibilityClient, sqs_client()),
        f"{endpoint.url}/123456789012/q",
        RetrySettings(),
        call_seconds=LIMIT_SECONDS,
    )
    record = {"messageId": "m-1", "receiptHandle": "h-1", "attributes": {"ApproximateReceiveCount": "1"}}
    result = backoff.apply([record], {"m-1"}, Deadline(60_000, 1_000), 1_000)
    assert (result.backed_off, result.errors) == (0, {"CallAbandoned": 1})


def test_a_quarantine_write_past_its_limit_fails(endpoint: TricklingEndpoint) -> None:
    store = QuarantineStore(s3_client(), "quarantine", call_seconds=LIMIT_SECONDS)
    rejection = Rejection(MessageIdentity("m-1"), Reason.NOT_JSON, "body", {"messageId": "m-1", "body": "{"})
    with pytest.raises(CallAbandoned):
        store.store([rejection])


def test_abandoned_calls_hold_a_bounded_number_of_threads() -> None:
    """With two calls still running past their limit, a third is not started: it fails at once. Once
    they end, calls run again."""
    limit = WallClockLimit("test", max_abandoned=2)
    release = threading.Event()
    third: list[int] = []

    def hang() -> int:
        release.wait(10)
        return 1

    for _ in range(2):
        with pytest.raises(CallAbandoned):
            limit.call(hang, 0.0)
    with pytest.raises(CallAbandoned):
        limit.call(lambda: third.append(1), 5.0)
    assert (third, limit.abandoned) == ([], 2)
    release.set()
    for _ in range(500):  # bounded: the two threads end as soon as they are released
        if limit.abandoned == 0:
            break
        time.sleep(0.01)
    assert limit.abandoned == 0
    assert limit.call(lambda: 7, 5.0) == 7
    with pytest.raises(ZeroDivisionError):
        limit.call(lambda: 1 // 0, 5.0)
