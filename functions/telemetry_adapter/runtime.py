"""Wiring of the processor's collaborators, built once per process and reused across invocations.

Every AWS client honours the standard SDK settings (``AWS_REGION``, ``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_KINESIS`` and friends) because boto3 reads them itself.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, cast

from telemetry_adapter.backoff import VisibilityBackoff, VisibilityClient
from telemetry_adapter.config import Settings
from telemetry_adapter.handback import QueueHandBack, SqsClient, sqs_client
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import metrics
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import KinesisClient, OrderedPublisher
from telemetry_adapter.quarantine import QuarantineStore, s3_client
from telemetry_adapter.time_budget import KINESIS_CONNECT_TIMEOUT_SECONDS, KINESIS_READ_TIMEOUT_SECONDS

# No SDK retries: the publisher retries failed records itself, with the invocation's deadline in view.
# These timeouts bound the connect and each read, not the call (an answer trickling in never trips
# them): the publisher's own wall-clock limit per call (KINESIS_CALL_TIMEOUT_MS) is what the safety
# margin counts on.
_KINESIS_CONFIG: dict[str, Any] = {
    "retries": {"total_max_attempts": 1},
    "connect_timeout": KINESIS_CONNECT_TIMEOUT_SECONDS,
    "read_timeout": KINESIS_READ_TIMEOUT_SECONDS,
    "max_pool_connections": 16,
}


def kinesis_client() -> KinesisClient:
    """A boto3 Kinesis client configured for the publisher."""
    import boto3
    from botocore.config import Config

    return cast(KinesisClient, boto3.client("kinesis", config=Config(**_KINESIS_CONFIG)))


def record_statement_latency(name: str, seconds: float) -> None:
    """Ledger statement latency, as a metric for the dashboard."""
    metrics.add_metric(name=f"LedgerStatementLatency_{name}", unit="Milliseconds", value=seconds * 1000)


def ledger_from_env(settings: Settings | None = None) -> Ledger:
    """The ledger on the database the environment names, reporting statement latency as a metric,
    with the statement timeout and idle limit of ``settings`` (the defaults when None)."""
    statement_timeout_ms = Settings.statement_timeout_ms if settings is None else settings.statement_timeout_ms
    max_idle_seconds = Settings.max_idle_seconds if settings is None else settings.max_idle_seconds
    database = DatabaseSettings.from_env()
    database = dataclasses.replace(database, timeout_seconds=statement_timeout_ms / 1000)
    return Ledger(
        ConnectionProvider(database.connect, max_idle_seconds=max_idle_seconds),
        on_statement=record_statement_latency,
        statement_timeout_seconds=statement_timeout_ms / 1000,
    )


def build_pipeline(settings: Settings | None = None, client: KinesisClient | None = None) -> BatchPipeline:
    """A pipeline wired as the processor's: ``settings`` and ``client`` default to the environment's.

    The local runner, the chaos worker and the benchmark pass their own client (a fault injector, a
    hook) or settings, and share the rest of the wiring with the Lambda.
    """
    settings = settings or Settings.from_env()
    publisher = OrderedPublisher(client or kinesis_client(), settings.stream_name, settings.publish)
    # One SQS client (the same short timeouts) serves the hand-back and the backoff: one client less to
    # build on a cold start.
    sqs = sqs_client() if settings.queue_url else None
    handback = QueueHandBack(sqs, settings.queue_url) if sqs is not None and settings.queue_url else None
    quarantine = QuarantineStore(s3_client(), settings.quarantine_bucket) if settings.quarantine_bucket else None
    return BatchPipeline(
        settings,
        ledger_from_env(settings),
        publisher,
        handback=handback,
        backoff=visibility_backoff(settings, sqs),
        quarantine=quarantine,
    )


def visibility_backoff(settings: Settings, client: SqsClient | None = None) -> VisibilityBackoff | None:
    """The failed messages' backoff on ``QUEUE_URL`` (through ``client``, a new SQS client when None), or
    None without one (a bare ``sam local invoke``)."""
    if not settings.queue_url:
        return None
    return VisibilityBackoff(cast(VisibilityClient, client or sqs_client()), settings.queue_url, settings.retry)


@cache
def default_pipeline() -> BatchPipeline:
    """The processor's pipeline from the environment; raises ConfigurationError naming a bad variable."""
    return build_pipeline()
