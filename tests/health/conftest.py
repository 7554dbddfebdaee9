"""Fixtures for the health function: its environment on PostgreSQL and moto, and broken databases.

Faults are real sockets on loopback: a port with nothing listening (a stopped database) and a
server that accepts connections and never answers (a hung one).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from health.handler import handle
from health.settings import HealthSettings
from health.wiring import HealthDependencies, build_dependencies
from tests.conftest import REGION, STREAM

CHECK_TIMEOUT_MS = 1_000


def function_url_event(method: str = "GET", path: str = "/health") -> dict[str, Any]:
    """A Lambda Function URL request, payload format 2.0."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.lambda-url.us-east-1.on.aws", "user-agent": "pytest"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.lambda-url.us-east-1.on.aws",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "request-1",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }


def call(dependencies: HealthDependencies, method: str = "GET", path: str = "/health") -> tuple[int, Any, Any]:
    """Status code, headers and parsed body of one request."""
    response = handle(function_url_event(method, path), dependencies)
    return response["statusCode"], response["headers"], json.loads(response["body"])


def dependencies_for(env: dict[str, str]) -> HealthDependencies:
    """The function's dependencies, built exactly as in Lambda but from ``env``."""
    return build_dependencies(HealthSettings.from_env(env), env)


@pytest.fixture
def queues(aws: None) -> dict[str, str]:
    """The submissions queue and its dead-letter queue on moto."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="submissions-dlq")["QueueUrl"]
    queue = sqs.create_queue(QueueName="submissions")["QueueUrl"]
    return {"QUEUE_URL": queue, "DLQ_URL": dlq}


@pytest.fixture
def health_env(clean_database: str, kinesis: Any, queues: dict[str, str]) -> dict[str, str]:
    """A complete, healthy environment: migrated ledger, ACTIVE stream, empty queues."""
    return {
        "DATABASE_URL": clean_database,
        "STREAM_NAME": STREAM,
        "HEALTH_CHECK_TIMEOUT_MS": str(CHECK_TIMEOUT_MS),
        "AWS_REGION": REGION,
        **queues,
    }


@pytest.fixture
def stopped_database_url() -> Iterator[str]:
    """A URL to a loopback port that is bound but not listening: connections are refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        yield f"postgresql://postgres:not-a-secret@127.0.0.1:{port}/postgres"
    finally:
        holder.close()


@dataclass
class HungServer:
    """A loopback server that accepts connections and never sends a byte."""

    url: str
    accepted: list[socket.socket]

    def wait_for_connections(self, count: int, within_seconds: float = 10) -> int:
        """How many connections it accepted, waiting (bounded) until there are at least ``count``."""
        deadline = time.monotonic() + within_seconds
        while len(self.accepted) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.accepted)


@pytest.fixture
def hung_database() -> Iterator[HungServer]:
    """A hung database server (see :class:`HungServer`)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def accept_and_ignore() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept_and_ignore, name="hung-database", daemon=True)
    thread.start()
    try:
        yield HungServer(f"postgresql://postgres:not-a-secret@127.0.0.1:{port}/postgres", accepted)
    finally:
        stop.set()
        thread.join(timeout=2)
        for connection in accepted:
            connection.close()
        server.close()
