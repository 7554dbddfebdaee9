"""The migration custom resource does not get a deploy stuck: rollbacks, a slow first connection, locks."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pg8000.native
import pytest
from migrate.handler import (
    MigrationFailed,
    MigrationTimeouts,
    connect_with_retry,
    migrate,
    on_event,
    rollback_reason,
)

from telemetry_adapter.ledger.connection import DatabaseSettings

OWN_HASH = "a" * 64
OLD_HASH = "b" * 64
FAST = MigrationTimeouts(first_backoff_seconds=1.0, max_backoff_seconds=4.0, lock_timeout_ms=200, lock_attempts=3)


class FakeClock:
    """Time that moves only when the code under test sleeps: retries are counted, never timed."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Any = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def update(asset: str, schema: str, old_asset: str = OLD_HASH, old_schema: str = "1") -> dict[str, Any]:
    return {
        "RequestType": "Update",
        "PhysicalResourceId": "ledger-migrations",
        "ResourceProperties": {"AssetHash": asset, "SchemaVersion": schema},
        "OldResourceProperties": {"AssetHash": old_asset, "SchemaVersion": old_schema},
    }


# --- rollback recognition --------------------------------------------------------------------------


def test_newer_code_answering_for_older_code_is_a_rollback() -> None:
    assert "rollback" in (rollback_reason(update(OLD_HASH, "1", old_asset=OWN_HASH), OWN_HASH) or "")


def test_a_lower_schema_version_is_a_rollback() -> None:
    reason = rollback_reason(update(OWN_HASH, "1", old_asset=OLD_HASH, old_schema="2"), OWN_HASH)
    assert reason is not None
    assert "schema version 1 replaces 2" in reason


def test_forward_updates_and_creates_migrate() -> None:
    assert rollback_reason(update(OWN_HASH, "2", old_schema="1"), OWN_HASH) is None
    assert rollback_reason(update(OWN_HASH, "1", old_schema="1"), OWN_HASH) is None
    assert rollback_reason({"RequestType": "Create", "ResourceProperties": {"AssetHash": OLD_HASH}}, OWN_HASH) is None


def test_a_rollback_succeeds_without_touching_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on the database port: any connection attempt would fail the rollback.
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    monkeypatch.setenv("ASSET_HASH", OWN_HASH)
    answer = on_event(update(OLD_HASH, "1", old_asset=OWN_HASH, old_schema="2"), None)
    assert answer["PhysicalResourceId"] == "ledger-migrations"
    assert answer["Data"]["Applied"] == ""
    assert "rollback" in answer["Data"]["Skipped"]


# --- the first connection --------------------------------------------------------------------------


def test_first_connection_is_retried_with_growing_backoff(database_url: str) -> None:
    clock = FakeClock()
    refused = DatabaseSettings.from_url(f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    real = DatabaseSettings.from_url(database_url)
    attempts: list[str] = []

    def connect() -> pg8000.native.Connection:
        attempts.append("try")
        return (refused if len(attempts) <= 4 else real).connect()

    connection = connect_with_retry(connect, deadline=300, timeouts=FAST, clock=clock, sleep=clock.sleep)
    try:
        assert connection.run("SELECT 1") == [[1]]
    finally:
        connection.close()
    assert len(attempts) == 5
    assert clock.sleeps == [1.0, 2.0, 4.0, 4.0]  # doubling, capped


def test_first_connection_gives_up_at_the_deadline() -> None:
    clock = FakeClock()
    refused = DatabaseSettings.from_url(f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    with pytest.raises(MigrationFailed, match="no database connection after 5 attempts"):
        connect_with_retry(refused.connect, deadline=12, timeouts=FAST, clock=clock, sleep=clock.sleep)
    assert sum(clock.sleeps) <= 12


# --- its own timeouts, and locks held elsewhere ----------------------------------------------------


def migrate_counted(database_url: str, app_user: str, clock: FakeClock) -> list[int]:
    """The migration against the test database, sleeping on the fake clock."""
    return migrate(
        DatabaseSettings.from_url(database_url).connect,
        app_user=app_user,
        password="pw",
        deadline=60,
        timeouts=FAST,
        clock=clock,
        sleep=clock.sleep,
    )


def test_session_gets_its_own_statement_and_lock_timeouts(database_url: str, app_user: str) -> None:
    seen: dict[str, str] = {}
    settings = DatabaseSettings.from_url(database_url)

    def connect() -> pg8000.native.Connection:
        connection = settings.connect()
        original = connection.run

        def run(sql: str, **params: Any) -> Any:
            if sql.startswith("SELECT pg_advisory_xact_lock"):
                seen["statement_timeout"] = original("SHOW statement_timeout")[0][0]
                seen["lock_timeout"] = original("SHOW lock_timeout")[0][0]
            return original(sql, **params)

        connection.run = run
        return connection

    migrate(connect, app_user=app_user, password="pw", deadline=60, timeouts=FAST)
    assert seen == {"statement_timeout": "2min", "lock_timeout": "200ms"}


def test_a_lock_held_elsewhere_is_waited_out_with_retries(database_url: str, app_user: str) -> None:
    """A session holding the migrations' advisory lock makes the first attempt time out; it is retried."""
    from telemetry_adapter.ledger import migrations

    holder = DatabaseSettings.from_url(database_url).connect()
    holder.run("SELECT pg_advisory_lock(:key)", key=migrations._LOCK_KEY)
    clock = FakeClock()
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            holder.run("SELECT pg_advisory_unlock(:key)", key=migrations._LOCK_KEY)
            released.set()

    clock.on_sleep = release
    try:
        migrate_counted(database_url, app_user, clock)
    finally:
        release()
        holder.close()
    assert clock.sleeps == [1.0]  # one lock timeout, one retry
    check = DatabaseSettings.from_url(database_url).connect()
    try:
        assert check.run("SELECT 1 FROM pg_roles WHERE rolname = :n", n=app_user) == [[1]]
    finally:
        check.close()


def test_a_lock_that_is_never_released_fails_after_the_attempts(database_url: str, app_user: str) -> None:
    from telemetry_adapter.ledger import migrations

    holder = DatabaseSettings.from_url(database_url).connect()
    holder.run("SELECT pg_advisory_lock(:key)", key=migrations._LOCK_KEY)
    clock = FakeClock()
    try:
        with pytest.raises(pg8000.native.DatabaseError) as raised:
            migrate_counted(database_url, app_user, clock)
    finally:
        holder.close()
    assert raised.value.args[0]["C"] == "55P03"
    assert len(clock.sleeps) == FAST.lock_attempts - 1
