"""The services every case talks to: one PostgreSQL database and Kinesis on moto, in process.

All cases share them, so the comparison is fair: the same database server, the same moto backend,
the same botocore request path. Between two timed runs the ledger is emptied and the stream is
re-created, so each run starts from a fresh state and moto's memory does not grow run after run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pg8000.native
from moto import mock_aws

from bench.latency import CallDelay, NetworkModel, kinesis_latency
from devkit.moto_fixes import serialised_moto_shards
from devkit.pgproxy import LatencyProxy, latency_proxy
from devkit.postgres import provisioned_database
from telemetry_adapter.ledger.connection import DatabaseSettings

STREAM = "bench-events"
IDEMPOTENCY_TABLE = "bench-idempotency"
REGION = "us-east-1"
MIN_SHARDS = 4
MAX_SHARDS = 128

# The handler reads its configuration from the environment, as in Lambda. Fake credentials: moto only.
HANDLER_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "STREAM_NAME": STREAM,
    "POWERTOOLS_SERVICE_NAME": "telemetry-adapter",
    "POWERTOOLS_METRICS_NAMESPACE": "TelemetryAdapterBench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "LOG_LEVEL": "WARNING",
    # Kinesis here is moto, running in this very process: concurrent PutRecords calls cannot overlap
    # any waiting, they only contend for one interpreter lock (measured: +28 % at 10,000 messages).
    # The handler therefore runs with one call in flight, like the sequential floor; the case
    # ``handler_concurrent`` shows the deployed default (4) for comparison.
    "PUBLISH_CONCURRENCY": "1",
}
CONCURRENT_PUBLISH = 4


@dataclass
class ModelledNetwork:
    """The latency model in force, with the counters that show it was applied."""

    model: NetworkModel
    kinesis: CallDelay
    sql: LatencyProxy
    dynamodb: CallDelay
    """Attached to the idiom's own DynamoDB client (Powertools builds it from a session of its own)."""


@dataclass
class Stack:
    """A migrated database, a moto Kinesis stream and DynamoDB table, with the means to reset them between runs."""

    database_url: str
    kinesis: Any
    _admin: pg8000.native.Connection
    dynamodb: Any
    network: ModelledNetwork | None = None
    """The modelled latency the cases pay, or None on plain loopback."""

    def reset(self, messages: int = 0) -> None:
        """Empty the ledger, re-create the stream sized for ``messages`` and the idempotency table (never timed)."""
        self._admin.run("TRUNCATE submission_ledger, processor_heartbeat")
        with contextlib.suppress(self.kinesis.exceptions.ResourceNotFoundException):
            self.kinesis.delete_stream(StreamName=STREAM, EnforceConsumerDeletion=True)
        self.kinesis.create_stream(StreamName=STREAM, ShardCount=shards_for(messages))
        with contextlib.suppress(self.dynamodb.exceptions.ResourceNotFoundException):
            self.dynamodb.delete_table(TableName=IDEMPOTENCY_TABLE)
        create_idempotency_table(self.dynamodb)

    def stream_record_count(self) -> int:
        """Records the stream holds (reads moto's backend through the API; slow, for checks only)."""
        from devkit.kinesis import read_stream

        return len(read_stream(self.kinesis, STREAM))

    def connect(self) -> pg8000.native.Connection:
        """A new connection to the bench database."""
        return DatabaseSettings.from_url(self.database_url).connect()


def create_idempotency_table(client: Any) -> None:
    """The table the Powertools idempotency docs ask for: partition key ``id``, on-demand billing.

    (Their TTL attribute, ``expiration``, only makes DynamoDB delete expired items; nothing here reads
    it, so it is not set on moto.)
    """
    client.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def shards_for(messages: int) -> int:
    """Shards for a batch, as a stream provisioned for its load would have (or on-demand mode).

    It matters for moto, not for our code: moto's ``Shard.put_record`` copies the shard's whole key
    list for every record (quadratic in records per shard) and finds a record's shard by a linear
    scan. One shard per 50 messages (about 400 records) keeps both small; with 4 shards, 80,000
    records cost moto about 35 s and would drown every other figure.
    """
    return max(MIN_SHARDS, min(MAX_SHARDS, messages // 50))


@contextlib.contextmanager
def handler_output_discarded() -> Iterator[None]:
    """The handler's logs (one INFO line per batch at the deployed level) and EMF metrics go to stdout, as
    in Lambda, where they cost the same; here they are written to ``os.devnull`` to keep the tables
    readable. Powertools' warning about an invocation without metrics is silenced with them."""
    from telemetry_adapter.observability import logger

    handler = logger.registered_handler
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        saved = handler.setStream(sink) if isinstance(handler, logging.StreamHandler) else None
        try:
            yield
        finally:
            if saved is not None and isinstance(handler, logging.StreamHandler):
                handler.setStream(saved)


@contextlib.contextmanager
def bench_stack(database_url: str | None = None) -> Iterator[Stack]:
    """The database (``database_url``, else a fresh one on the ``TEST_DATABASE_URL`` server, else
    embedded) and moto. The handler's environment is set, and its output discarded
    (:func:`handler_output_discarded`), for the duration only."""
    saved = {name: os.environ.get(name) for name in [*HANDLER_ENV, "DATABASE_URL"]}
    os.environ.update(HANDLER_ENV)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(handler_output_discarded())
            url = database_url or stack.enter_context(provisioned_database())
            stack.enter_context(mock_aws())
            # Concurrent PutRecords (handler_concurrent, more so with modelled latency) must not lose records.
            stack.enter_context(serialised_moto_shards())
            os.environ["DATABASE_URL"] = url
            admin = DatabaseSettings.from_url(url).connect()
            stack.callback(admin.close)
            kinesis = boto3.client("kinesis", region_name=REGION)
            bench = Stack(url, kinesis, admin, boto3.client("dynamodb", region_name=REGION))
            bench.reset()
            yield bench
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def modelled_network(stack: Stack, model: NetworkModel) -> Iterator[Stack]:
    """The same database and moto backend behind the modelled latency, for every case alike.

    PutRecords calls of every client created inside the block wait ``model.kinesis_rtt_ms``
    (:mod:`bench.latency`); ``DATABASE_URL`` points at a delaying proxy (:mod:`devkit.pgproxy`), so the
    handler's pipeline, built after this, and the bench's own connection (floor) pay
    ``model.sql_rtt_ms`` per round trip; the idiom attaches ``network.dynamodb`` to its DynamoDB
    client. Resets stay on the direct admin connection and clients: never timed.
    """
    saved_url = os.environ.get("DATABASE_URL")
    with kinesis_latency(model.kinesis_rtt_ms) as delay, latency_proxy(stack.database_url, model.sql_rtt_ms) as proxy:
        os.environ["DATABASE_URL"] = proxy.url
        try:
            yield Stack(
                proxy.url,
                boto3.client("kinesis", region_name=REGION),
                stack._admin,
                stack.dynamodb,
                ModelledNetwork(model, delay, proxy, CallDelay(model.dynamodb_rtt_ms / 1000)),
            )
        finally:
            if saved_url is None:
                os.environ.pop("DATABASE_URL", None)
            else:
                os.environ["DATABASE_URL"] = saved_url
