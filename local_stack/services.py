"""The services a run needs: the embedded AWS endpoint and PostgreSQL, or the real ones in worker mode.

Local mode starts moto on a loopback port, an embedded, pip-installed PostgreSQL in a temporary folder
(or uses the database ``--database-url`` names explicitly; an exported ``DATABASE_URL`` is never
picked up, so a run cannot write test data into a real ledger by accident), applies the ledger
migrations, creates the queue, DLQ, stream and quarantine bucket, and sets the processor's environment for the duration
of the block. Worker mode starts nothing: it checks the environment names a queue, a stream and a
database, that the queue answers, and uses them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from devkit.embedded_postgres import embedded_postgres
from devkit.pgproxy import LatencyProxy, latency_proxy
from local_stack.environment import FAKE_CREDENTIALS, REGION, budget_margin, local_environment, patched_environ
from local_stack.moto_server import LoopbackMotoServer
from local_stack.options import Options
from local_stack.ports import check_free
from local_stack.resources import Resources, create_resources
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations

_PROXY_CONNECTIONS = 10_000
"""Connections the outage proxy forwards in a run: every reconnect after a drop is one."""


@dataclass(frozen=True)
class Stack:
    """What a run talks to."""

    resources: Resources
    database_url: str | None
    """The ledger's URL when known (local mode, or ``DATABASE_URL`` in worker mode)."""
    endpoint_url: str | None
    """The embedded AWS endpoint (None against real AWS)."""
    embedded_database: bool = False
    ledger_proxy: LatencyProxy | None = None
    """With ``--ledger-outage``: the proxy the processor and the health endpoint reach the ledger through."""


def aws_client(service: str) -> Any:
    """A boto3 client configured from the environment (region, endpoint, credentials), as Lambda's are."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
    return boto3.client(service, region_name=region_from_env(), config=config)  # type: ignore[call-overload]


def region_from_env() -> str | None:
    """``AWS_REGION`` (what Lambda sets, and what the docs export) or ``AWS_DEFAULT_REGION`` (what boto3
    reads); None leaves it to the AWS configuration files."""
    return os.environ.get("AWS_REGION", "").strip() or os.environ.get("AWS_DEFAULT_REGION", "").strip() or None


def migrate(database_url: str) -> list[int]:
    """Apply the ledger migrations (idempotent; returns the versions applied now)."""
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        return apply_migrations(connection)
    finally:
        connection.close()


@contextlib.contextmanager
def local_services(options: Options) -> Iterator[Stack]:
    """moto, PostgreSQL, migrations, resources and the processor's environment, torn down on exit."""
    for what, port in (
        ("the AWS endpoint", options.aws_port),
        ("the health endpoint", options.health_port),
        ("PostgreSQL", 0 if options.database_url else options.db_port),
    ):
        check_free(what, port)
    with contextlib.ExitStack() as stack:
        moto = LoopbackMotoServer(options.aws_port)
        moto.start()
        stack.callback(moto.stop)
        database_url = options.database_url or stack.enter_context(embedded_postgres(tcp_port=options.db_port)).url
        migrate(database_url)
        aws = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": moto.endpoint_url, "AWS_REGION": REGION}
        with patched_environ({**aws, "AWS_DEFAULT_REGION": REGION}):
            resources = create_resources(
                aws_client("sqs"),
                aws_client("kinesis"),
                aws_client("s3"),
                visibility_timeout=options.visibility_timeout,
                max_receive_count=options.receives,
            )
        proxy = None
        if options.ledger_outage > 0:
            proxy = stack.enter_context(latency_proxy(database_url, 0.0, max_connections=_PROXY_CONNECTIONS))
        environment = local_environment(
            endpoint_url=moto.endpoint_url,
            database_url=proxy.url if proxy else database_url,
            queue_url=resources.queue_url,
            dlq_url=resources.dlq_url,
            quarantine_bucket=resources.quarantine_bucket,
        )
        environment.update(budget_margin(int(options.function_timeout * 1000)))
        environment.update(options.processor_environment())
        stack.enter_context(patched_environ(environment))
        yield Stack(
            resources, database_url, moto.endpoint_url, embedded_database=not options.database_url, ledger_proxy=proxy
        )


@contextlib.contextmanager
def worker_services(options: Options) -> Iterator[Stack]:
    """The real endpoints the environment names; raises ConfigurationError naming what is missing."""
    missing = [name for name in ("QUEUE_URL", "STREAM_NAME") if not os.environ.get(name, "").strip()]
    if missing:
        raise ConfigurationError(f"--worker needs {' and '.join(missing)} in the environment")
    overrides = budget_margin(int(options.function_timeout * 1000))
    if options.database_url:
        overrides["DATABASE_URL"] = options.database_url
    with patched_environ(overrides):
        DatabaseSettings.from_env()  # fails early, naming the variable, when the database is not configured
        resources = Resources(
            queue_url=os.environ["QUEUE_URL"].strip(),
            dlq_url=os.environ.get("DLQ_URL", "").strip(),
            stream_name=os.environ["STREAM_NAME"].strip(),
            quarantine_bucket=os.environ.get("QUARANTINE_BUCKET", "").strip(),
        )
        _check_queue(resources.queue_url)
        yield Stack(
            resources,
            os.environ.get("DATABASE_URL", "").strip() or None,
            os.environ.get("AWS_ENDPOINT_URL") or None,
        )


def _check_queue(queue_url: str) -> None:
    """Fail at start, not silently in the poll loop, when the queue cannot be reached."""
    try:
        aws_client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    except Exception as error:
        raise ConfigurationError(f"QUEUE_URL {queue_url} cannot be reached: {error}") from None
