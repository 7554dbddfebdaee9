"""Sets the stage for a chaos run and judges it: database, moto Kinesis server, run, invariants.

Kinesis is a moto server on a loopback port (``ThreadedMotoServer``), not the in-process mock, because
the SIGKILLed worker runs in another process and must write to the same stream.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from chaos.config import SHARDS, STREAM, ChaosConfig
from chaos.control import RunControl
from chaos.database_faults import chaos_database
from chaos.invariants import LEDGER_ROWS_SQL, InvariantReport, check_ledger, check_stream
from chaos.scenario import ChaosRun, RunStats
from devkit.kinesis import read_stream
from devkit.moto_fixes import serialised_moto_shards
from devkit.postgres import connect

REGION = "us-east-1"
# moto accepts any credentials; fixed fakes, so a run never picks up real ones.
_ACCESS_KEY = "chaos"
_SECRET_KEY = "chaos"  # noqa: S105 - a fake for moto, not a secret
# Like the processor's own client: no SDK retries, timeouts well inside the safety margin.
_PUBLISHER_CONFIG = Config(
    retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5, max_pool_connections=16
)


@contextlib.contextmanager
def moto_kinesis() -> Iterator[tuple[str, Any]]:
    """A moto server on a free loopback port with the stream created; yield (endpoint, client)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per call otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with serialised_moto_shards():
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            client = boto3.client(
                "kinesis",
                endpoint_url=endpoint,
                region_name=REGION,
                config=_PUBLISHER_CONFIG,
                aws_access_key_id=_ACCESS_KEY,
                aws_secret_access_key=_SECRET_KEY,
            )
            client.create_stream(StreamName=STREAM, ShardCount=SHARDS)
            client.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 1})
            yield endpoint, client
        finally:
            server.stop()


def worker_environment(config: ChaosConfig, database_url: str, endpoint: str) -> dict[str, str]:
    """The environment of a worker process: the Lambda's variables, pointed at the local stand-ins."""
    publish = config.settings().publish
    return {
        "STREAM_NAME": STREAM,
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL_KINESIS": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": _ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": _SECRET_KEY,
        "TIME_BUDGET_MARGIN_MS": str(publish.safety_margin_ms),
        "LEASE_GRACE_SECONDS": str(publish.lease_grace_seconds),
        "CIRCUIT_BREAKER_COOLDOWN_SECONDS": str(config.breaker_cooldown_seconds),
        "PUBLISH_MAX_ATTEMPTS": str(publish.max_attempts),
        "BACKOFF_BASE_MS": str(publish.backoff_base_ms),
        "BACKOFF_CAP_MS": str(publish.backoff_cap_ms),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def run_chaos(config: ChaosConfig, server_url: str | None = None, control: RunControl | None = None) -> dict[str, Any]:
    """Run the scenario and check every invariant; return the figures for ``build/chaos.json``.

    ``control`` can stop the run early (the checks still run, on what was done) and watch it.
    """
    control = control or RunControl()
    with chaos_database(server_url) as database, moto_kinesis() as (endpoint, client):
        run = ChaosRun(config, database, client, worker_environment(config, database.url, endpoint))
        if control.observer is not None:
            control.observer.attach(run, client)
        stats = run.run(control)
        records = read_stream(client, STREAM)
        report = check_stream(records, run.traffic.expected.valid)
        connection = connect(database.url)
        try:
            rows = connection.run(LEDGER_ROWS_SQL)
        finally:
            connection.close()
        check_ledger(report, ((row[0], bool(row[1])) for row in rows), run.traffic.expected.valid)
        return summarise(config, run, stats, report, database.restarter.kind)


def summarise(
    config: ChaosConfig, run: ChaosRun, stats: RunStats, report: InvariantReport, restart: str
) -> dict[str, Any]:
    """The result document: run figures, faults by kind, every invariant's count, and a verdict."""
    ledger_failures = sum(report_.ledger_failed for pipeline in run.pipelines for report_ in pipeline.reports)
    faults = dict(sorted(stats.faults.items()))
    faults["ledger_failures_seen"] = ledger_failures
    duplicates_allowed = bool(
        faults.get("worker_kills", 0) or faults.get("put_records_lost_answers", 0) or ledger_failures
    )
    dead_lettered = sum(message.valid for message in run.queue.dead_letters)
    unfinished = len(run.queue)
    broken = report.broken(duplicates_allowed=duplicates_allowed)
    broken += [name for name, value in (("dead_lettered", dead_lettered), ("unfinished", unfinished)) if value]
    return {
        "duration_seconds": config.duration_seconds,
        "fault_seconds": round(stats.fault_seconds, 1),
        "drain_seconds": round(stats.drain_seconds, 1),
        "batches": stats.batches,
        "drain_batches": stats.drain_batches,
        "messages": run.queue.sent,
        "deliveries": stats.deliveries,
        "redeliveries": run.queue.redeliveries,
        "valid_submissions": len(run.traffic.expected.valid),
        "events_expected": sum(len(s.events) for s in run.traffic.expected.valid.values()),
        "records_in_stream": report.records,
        "faults": faults,
        "lost": report.lost,
        "order_violations": report.order_violations,
        "invalid_published": report.invalid_published,
        "duplicates": report.duplicates,
        "duplicate_mismatches": report.duplicate_mismatches,
        "duplicates_allowed": duplicates_allowed,
        "corrupted": report.corrupted,
        "stuck": report.stuck,
        "invalid_in_ledger": report.invalid_in_ledger,
        "dead_lettered": dead_lettered,
        "unfinished": unfinished,
        "database_restart": restart,
        "examples": report.as_dict()["examples"],
        "broken": broken,
        "ok": not broken,
    }
