"""The retention clean-up at volume: bounded chunks under the function's own deadline, never a
statement re-sent after a timeout, failures counted. Real PostgreSQL; the deadline runs on a virtual
clock that each statement advances, so where a run stops does not depend on the machine's speed."""

from __future__ import annotations

import threading
from typing import Any

import pg8000.native
import pytest
from cleanup.handler import CleanupSettings, clean_up, lambda_handler

from devkit.lambda_shapes import LambdaContext, VirtualClock
from devkit.pgproxy import LatencyProxy
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import metrics

EXPIRED = 300_000
CHUNK = 20_000


def run(url: str, sql: str, **params: Any) -> list[list[Any]]:
    connection = DatabaseSettings.from_url(url).connect(timeout_seconds=120)
    try:
        rows: list[list[Any]] = connection.run(sql, **params)
        return rows
    finally:
        connection.close()


def with_backlog(url: str, expired: int) -> str:
    """``url``'s ledger holding ``expired`` expired rows, plus rows the clean-up must keep: five recent
    ones, and an old one under a live lease."""
    run(
        url,
        "INSERT INTO submission_ledger (submission_id, device_id, content_digest, event_count, published_count,"
        " first_seen_at, completed_at)"
        " SELECT gen_random_uuid(), gen_random_uuid(), '\\x00', 1, 1,"
        "  now() - interval '30 days' - make_interval(secs => n), now() - interval '30 days'"
        " FROM generate_series(1, :count) AS n",
        count=expired,
    )
    run(
        url,
        "INSERT INTO submission_ledger (submission_id, device_id, content_digest, event_count, first_seen_at,"
        " lease_owner, lease_expires_at)"
        " SELECT gen_random_uuid(), gen_random_uuid(), '\\x00'::bytea, 1, now() - interval '30 days',"
        "  'a-live-worker', now() + interval '1 hour'"
        " UNION ALL SELECT gen_random_uuid(), gen_random_uuid(), '\\x00'::bytea, 1, now(), NULL, NULL"
        " FROM generate_series(1, 5)",
    )
    run(url, "ANALYZE submission_ledger")
    return url


def emitted_metrics() -> dict[str, Any]:
    """The metrics the clean-up added since the last clear (Powertools' buffer), then cleared."""
    emitted: dict[str, Any] = dict(metrics.serialize_metric_set())
    metrics.clear_metrics()
    return emitted


def rows_left(url: str) -> int:
    return int(run(url, "SELECT count(*) FROM submission_ledger")[0][0])


def test_a_large_backlog_goes_in_bounded_chunks(clean_database: str) -> None:
    backlog = with_backlog(clean_database, EXPIRED)
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(backlog).connect))
    result = clean_up(ledger, CleanupSettings(retention_days=14, chunk_rows=CHUNK), Deadline(900_000, 6_000))
    assert result == {"deleted": EXPIRED, "chunks": EXPIRED // CHUNK + 1, "complete": True, "retention_days": 14}
    assert ledger.statements == EXPIRED // CHUNK + 2  # the chunks, the last one short, and the heartbeats
    assert rows_left(backlog) == 6  # five recent rows and the old one under a live lease


def test_the_deadline_stops_the_run_between_chunks(clean_database: str) -> None:
    """Each chunk takes 10 s of the virtual clock; a chunk starts only while one whole statement and
    the answer fit (here 5 s + 1 s): with 35 s, three chunks run, and the next run goes on from there."""
    backlog = with_backlog(clean_database, 4 * CHUNK)
    clock = VirtualClock()
    ledger = Ledger(
        ConnectionProvider(DatabaseSettings.from_url(backlog).connect),
        on_statement=lambda _name, _seconds: clock.advance(10),
    )
    deadline = Deadline(35_000, 6_000, clock=clock.now)
    metrics.clear_metrics()
    result = clean_up(ledger, CleanupSettings(retention_days=14, chunk_rows=CHUNK), deadline)
    assert result == {"deleted": 3 * CHUNK, "chunks": 3, "complete": False, "retention_days": 14}
    assert rows_left(backlog) == CHUNK + 6
    assert deadline.remaining() > 0
    emitted = emitted_metrics()
    assert (emitted["CleanupRowsDeleted"], emitted["CleanupIncomplete"]) == ([3.0 * CHUNK], [1.0])


def test_a_chunk_that_times_out_is_not_sent_again_and_the_run_fails(clean_database: str) -> None:
    backlog = with_backlog(clean_database, CHUNK)
    proxy = LatencyProxy(backlog, 0.0)
    proxy.start()
    try:
        ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect), statement_timeout_seconds=0.5)
        ledger.ping()
        proxy.rtt_seconds = 5.0  # every answer from now on comes long after the statement timeout
        metrics.clear_metrics()
        with pytest.raises((pg8000.native.InterfaceError, OSError)):  # pg8000 lets a socket timeout through
            clean_up(ledger, CleanupSettings(retention_days=14, chunk_rows=CHUNK), Deadline(900_000, 6_000))
        emitted = emitted_metrics()
    finally:
        threading.Thread(target=proxy.stop, daemon=True).start()  # sockets close at once; no need to wait
    assert ledger.statements == 2  # the ping, then the first chunk once: never re-sent
    assert emitted["CleanupFailures"] == [1.0]


def test_the_scheduled_function_reads_its_settings_and_the_context_deadline(
    clean_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with_backlog(clean_database, 250)
    monkeypatch.setenv("DATABASE_URL", clean_database)
    monkeypatch.setenv("CLEANUP_CHUNK_ROWS", "100")
    result = lambda_handler({"source": "aws.events"}, LambdaContext(timeout_ms=300_000))
    assert result == {"deleted": 250, "chunks": 3, "complete": True, "retention_days": 14}
    assert '"CleanupRowsDeleted":[250.0]' in capsys.readouterr().out.replace(" ", "")  # EMF flushed
    monkeypatch.setenv("CLEANUP_CHUNK_ROWS", "5")  # below the least accepted
    with pytest.raises(ConfigurationError, match="CLEANUP_CHUNK_ROWS"):
        lambda_handler({}, LambdaContext())
