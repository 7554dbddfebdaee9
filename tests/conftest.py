"""Shared fixtures: a real PostgreSQL (the machine's, or embedded), AWS on moto, Lambda-shaped input."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devkit.moto_fixes import serialised_moto_shards
from devkit.postgres import EmbeddedPostgresMissing, provisioned_database
from telemetry_adapter.config import PublishSettings, Settings
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import KinesisClient, OrderedPublisher

STREAM = "events"
REGION = "us-east-1"

# Tests never reach a real AWS account: fake credentials, one region, and Powertools quiet.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "TelemetryAdapterTests",
        "POWERTOOLS_SERVICE_NAME": "telemetry-adapter",
    }
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database for the session: on TEST_DATABASE_URL's server, or an embedded one."""
    try:
        with provisioned_database() as url:
            yield url
    except EmbeddedPostgresMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture
def clean_database(database_url: str) -> str:
    """The session database with every ledger table emptied."""
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        connection.run("TRUNCATE submission_ledger, processor_heartbeat")
    finally:
        connection.close()
    return database_url


@pytest.fixture
def ledger(clean_database: str) -> Iterator[Ledger]:
    """A ledger on an empty database."""
    provider = ConnectionProvider(DatabaseSettings.from_url(clean_database).connect)
    yield Ledger(provider)
    provider.discard()


@pytest.fixture
def aws() -> Iterator[None]:
    """Every boto3 call in the test goes to moto, in process (with shard appends made atomic)."""
    with mock_aws(), serialised_moto_shards():
        yield


@pytest.fixture
def kinesis(aws: None) -> Any:
    """A Kinesis client with the ``events`` stream (4 shards) created."""
    client = boto3.client("kinesis", region_name=REGION)
    client.create_stream(StreamName=STREAM, ShardCount=4)
    client.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 1})
    return client


FAST_RETRIES = PublishSettings(backoff_base_ms=1, backoff_cap_ms=5, max_attempts=50, safety_margin_ms=1_000)


def make_pipeline(
    database_url: str,
    client: KinesisClient,
    *,
    publish: PublishSettings = FAST_RETRIES,
    settings: Settings | None = None,
) -> BatchPipeline:
    """A pipeline wired to a database and a (possibly fault-injecting) Kinesis client."""
    settings = settings or Settings(stream_name=STREAM, publish=publish)
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(database_url).connect))
    return BatchPipeline(settings, ledger, OrderedPublisher(client, settings.stream_name, settings.publish))


@pytest.fixture
def pipeline(clean_database: str, kinesis: Any) -> Iterator[BatchPipeline]:
    """A pipeline on an empty ledger and a fault-free stream."""
    built = make_pipeline(clean_database, kinesis)
    yield built
    built.publisher.close()
