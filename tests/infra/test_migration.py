"""The migration custom resource does not get a deploy stuck: rollbacks, a slow first connection, locks."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pg8000.native
import pytest
from migrate.handler import (
    MigrationFailed,
    MigrationTimeouts,
    app_role,
    connect_with_retry,
    invocation_deadline,
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
        "ResourceProperties": {"ServiceToken": "arn:provider", "AssetHash": asset, "SchemaVersion": schema},
        "OldResourceProperties": {"ServiceToken": "arn:provider", "AssetHash": old_asset, "SchemaVersion": old_schema},
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
    assert rollback_reason({"RequestType": "Create", "ResourceProperties": {"AssetHash": OLD_HASH}}, OWN_HASH) is None
    new_user = update(OWN_HASH, "1", old_schema="1")
    new_user["ResourceProperties"]["HealthUser"] = "telemetry_health"  # a user the ledger does not have yet
    assert rollback_reason(new_user, OWN_HASH) is None
    new_secret = update(OWN_HASH, "1", old_schema="1")
    new_secret["ResourceProperties"]["AppSecretArn"] = "arn:new"  # a password to set from a replaced secret
    new_secret["OldResourceProperties"]["AppSecretArn"] = "arn:old"
    assert rollback_reason(new_secret, OWN_HASH) is None


def test_a_code_only_update_needs_no_database() -> None:
    reason = rollback_reason(update(OWN_HASH, "1", old_schema="1"), OWN_HASH)
    assert reason is not None
    assert "nothing the ledger lacks" in reason


def test_a_rollback_answered_by_the_reverted_older_code_needs_no_database() -> None:
    """CloudFormation rolls back in dependency order: the migration function gets its older code back
    before the custom resource gets its rollback update, so the request's asset hash is the answering
    function's own. The update it undoes added a user; the rollback asks for nothing new."""
    event = update(OLD_HASH, "1", old_asset=OWN_HASH, old_schema="1")
    event["OldResourceProperties"]["HealthUser"] = "telemetry_health"
    event["OldResourceProperties"]["HealthSecretArn"] = "arn:health"
    assert rollback_reason(event, OLD_HASH) is not None


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

    def connect(timeout_seconds: float) -> pg8000.native.Connection:
        attempts.append("try")
        return (refused if len(attempts) <= 4 else real).connect(timeout_seconds)

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


class DroppedPackets:
    """A proxy that never answers (a security group or route that drops packets): every attempt waits its
    whole connect timeout on the fake clock, then fails as a socket timeout does."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.timeouts: list[float] = []

    def __call__(self, timeout_seconds: float) -> pg8000.native.Connection:
        self.timeouts.append(timeout_seconds)
        self.clock.now += timeout_seconds
        raise TimeoutError("timed out")


def test_connecting_is_retried_for_the_whole_invocation_less_the_answer() -> None:
    """A 600 s migration function keeps trying for 590 s (10 s kept to answer CloudFormation), each
    attempt with the short connect timeout, so dropped packets cost seconds per attempt, not minutes."""
    clock = FakeClock()
    deadline = invocation_deadline(600_000, MigrationTimeouts(), clock)
    assert deadline == 590
    dropped = DroppedPackets(clock)
    with pytest.raises(MigrationFailed, match="no database connection"):
        connect_with_retry(dropped, deadline=deadline, timeouts=MigrationTimeouts(), clock=clock, sleep=clock.sleep)
    assert max(dropped.timeouts) == MigrationTimeouts().connect_timeout_seconds == 10
    assert len(dropped.timeouts) >= 15  # 130 s attempts allowed four
    assert clock.now > 500  # it kept trying past the old five-minute cap
    assert clock.now <= deadline  # and never into the time kept for the answer


def test_the_last_attempt_is_cut_to_the_time_left() -> None:
    clock = FakeClock()
    dropped = DroppedPackets(clock)
    with pytest.raises(MigrationFailed):
        connect_with_retry(dropped, deadline=14, timeouts=MigrationTimeouts(), clock=clock, sleep=clock.sleep)
    assert dropped.timeouts == [10, 3.0]  # 10 s, a 1 s pause, then the 3 s left
    assert clock.now == 14


def test_a_late_connection_gets_a_statement_timeout_that_fits_the_time_left(database_url: str, app_user: str) -> None:
    clock = FakeClock()
    seen: dict[str, str] = {}
    settings = DatabaseSettings.from_url(database_url)

    def connect(timeout_seconds: float) -> pg8000.native.Connection:
        clock.now = 560  # connected after a long outage, 30 s before the deadline
        connection = settings.connect(timeout_seconds)
        original = connection.run

        def run(sql: str, **params: Any) -> Any:
            if sql.startswith("SELECT pg_advisory_xact_lock"):
                seen["statement_timeout"] = original("SHOW statement_timeout")[0][0]
            return original(sql, **params)

        connection.run = run
        return connection

    migrate(connect, roles=[app_role(app_user, "pw")], deadline=590, timeouts=FAST, clock=clock, sleep=clock.sleep)
    assert seen == {"statement_timeout": "25s"}  # 30 s left, less the socket's 5 s margin


def test_no_migration_starts_without_time_for_a_statement(database_url: str, app_user: str) -> None:
    clock = FakeClock()
    settings = DatabaseSettings.from_url(database_url)

    def connect(timeout_seconds: float) -> pg8000.native.Connection:
        clock.now = 585  # 5 s left: the socket margin alone
        return settings.connect(timeout_seconds)

    with pytest.raises(MigrationFailed, match="left"):
        migrate(connect, roles=[app_role(app_user, "pw")], deadline=590, timeouts=FAST, clock=clock, sleep=clock.sleep)


# --- its own timeouts, and locks held elsewhere ----------------------------------------------------


def migrate_counted(database_url: str, app_user: str, clock: FakeClock) -> list[int]:
    """The migration against the test database, sleeping on the fake clock."""
    return migrate(
        DatabaseSettings.from_url(database_url).connect,
        roles=[app_role(app_user, "pw")],
        deadline=60,
        timeouts=FAST,
        clock=clock,
        sleep=clock.sleep,
    )


def test_session_gets_its_own_statement_and_lock_timeouts(database_url: str, app_user: str) -> None:
    seen: dict[str, str] = {}
    settings = DatabaseSettings.from_url(database_url)

    def connect(timeout_seconds: float) -> pg8000.native.Connection:
        connection = settings.connect(timeout_seconds)
        original = connection.run

        def run(sql: str, **params: Any) -> Any:
            if sql.startswith("SELECT pg_advisory_xact_lock"):
                seen["statement_timeout"] = original("SHOW statement_timeout")[0][0]
                seen["lock_timeout"] = original("SHOW lock_timeout")[0][0]
            return original(sql, **params)

        connection.run = run
        return connection

    migrate(connect, roles=[app_role(app_user, "pw")], deadline=time.monotonic() + 600, timeouts=FAST)
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
