"""The migration custom resource and the retention clean-up, against the real PostgreSQL (and moto)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import boto3
import pg8000.native
import pytest
from cleanup.handler import CleanupSettings, clean_up, retention_days
from migrate.handler import app_role, on_event, reader_role, roles_from_env, scram_verifier, set_up_database

from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from tests.conftest import REGION


def privileges(database_url: str, user: str, table: str) -> dict[str, bool]:
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        return {
            privilege: bool(
                connection.run("SELECT has_table_privilege(:u, :t, :p)", u=user, t=table, p=privilege)[0][0]
            )
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        }
    finally:
        connection.close()


def test_scram_verifier_matches_an_independent_implementation() -> None:
    """RFC 5802 / 7677 keys computed here with hashlib, against the scramp-based verifier."""
    import hashlib
    import hmac

    salt = b"0123456789abcdef"
    salted = hashlib.pbkdf2_hmac("sha256", b"secret", salt, 4096)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    expected = (
        f"SCRAM-SHA-256$4096:{base64.b64encode(salt).decode()}$"
        f"{base64.b64encode(stored_key).decode()}:{base64.b64encode(server_key).decode()}"
    )
    assert scram_verifier("secret", salt=salt) == expected
    assert scram_verifier("secret") != scram_verifier("secret")  # random salt by default


def test_set_up_database_is_idempotent_and_least_privilege(database_url: str, app_user: str, reader_user: str) -> None:
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        roles = [app_role(app_user, "pw-one"), reader_role(reader_user, "pw-r")]
        assert set_up_database(connection, roles) == []  # already migrated
        assert set_up_database(connection, [app_role(app_user, "pw-two"), reader_role(reader_user, "pw-r")]) == []
        stored = connection.run("SELECT rolpassword FROM pg_authid WHERE rolname = :n", n=app_user)[0][0]
    finally:
        connection.close()
    assert stored.startswith("SCRAM-SHA-256$")
    for table in ("submission_ledger", "processor_heartbeat"):
        assert privileges(database_url, app_user, table) == {
            "SELECT": True,
            "INSERT": True,
            "UPDATE": True,
            "DELETE": True,
            "TRUNCATE": False,
        }
        assert privileges(database_url, reader_user, table) == {
            "SELECT": True,
            "INSERT": False,
            "UPDATE": False,
            "DELETE": False,
            "TRUNCATE": False,
        }
    for user in (app_user, reader_user):
        assert not any(privileges(database_url, user, "schema_migrations").values())


def test_the_health_functions_role_reads_and_cannot_write(database_url: str, reader_user: str) -> None:
    """Signed in as the read-only role: the health checks' and the operators' lookup statements run;
    every write is refused by PostgreSQL."""
    from health.operations import SUBMISSION_SQL

    admin = DatabaseSettings.from_url(database_url).connect()
    try:
        set_up_database(admin, [reader_role(reader_user, "read-only-pw")])
    finally:
        admin.close()
    as_reader = DatabaseSettings.from_url(database_url)
    reader = DatabaseSettings(
        host=as_reader.host,
        port=as_reader.port,
        database=as_reader.database,
        user=reader_user,
        password="read-only-pw",
        unix_socket=as_reader.unix_socket,
        tls=as_reader.tls,
    ).connect()
    try:
        ledger = Ledger(ConnectionProvider(lambda *_: reader))
        assert ledger.missing_tables() == []
        ledger.last_heartbeat_age_seconds()
        reader.run(SUBMISSION_SQL, submission_id=str(uuid.uuid4()))
        for write in (
            "INSERT INTO processor_heartbeat (worker_id, last_batch_at, last_batch_size) VALUES ('w', now(), 1)",
            "UPDATE submission_ledger SET published_count = 0",
            "DELETE FROM submission_ledger",
            "TRUNCATE processor_heartbeat",
            "CREATE TABLE intruder (id int)",
        ):
            with pytest.raises(pg8000.native.DatabaseError) as refused:
                reader.run(write)
            assert refused.value.args[0]["C"] == "42501", write  # insufficient_privilege
    finally:
        reader.close()


def test_custom_resource_events(
    database_url: str, app_user: str, reader_user: str, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)

    def secret(name: str, user: str) -> str:
        value = json.dumps({"username": user, "password": f"{name}-s3cret"})
        return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("APP_SECRET_ARN", secret("app", app_user))
    monkeypatch.setenv("APP_DB_USER", app_user)
    monkeypatch.setenv("HEALTH_SECRET_ARN", secret("health", reader_user))
    monkeypatch.setenv("HEALTH_DB_USER", reader_user)
    created = on_event({"RequestType": "Create"}, None)
    assert created["PhysicalResourceId"] == "ledger-migrations"
    assert created["Data"] == {"Applied": ""}
    assert privileges(database_url, app_user, "submission_ledger")["INSERT"] is True
    assert privileges(database_url, reader_user, "submission_ledger") == {
        "SELECT": True,
        "INSERT": False,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
    }
    updated = on_event({"RequestType": "Update", "PhysicalResourceId": "ledger-migrations"}, None)
    assert updated["PhysicalResourceId"] == "ledger-migrations"
    deleted: dict[str, Any] = on_event({"RequestType": "Delete", "PhysicalResourceId": "ledger-migrations"}, None)
    assert deleted == {"PhysicalResourceId": "ledger-migrations"}


def test_cleanup_deletes_only_expired_rows(ledger: Ledger, clean_database: str) -> None:
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    requests = [ClaimRequest(sid, str(uuid.uuid4()), b"d", 0) for sid in (old, new)]
    ledger.claim(requests, owner="t", lease_seconds=1)
    ledger.record_outcome({old: 0, new: 0}, owner="t", worker="w", batch_size=2)
    connection = DatabaseSettings.from_url(clean_database).connect()
    try:
        connection.run(
            "UPDATE submission_ledger SET first_seen_at = now() - interval '20 days' WHERE submission_id = :i",
            i=old,
        )
        result = clean_up(ledger, CleanupSettings(retention_days=14), Deadline(60_000, 0))
        assert result == {"deleted": 1, "chunks": 1, "complete": True, "retention_days": 14}
        remaining = [row[0] for row in connection.run("SELECT submission_id::text FROM submission_ledger")]
    finally:
        connection.close()
    assert remaining == [new]


def test_cleanup_retention_setting() -> None:
    assert retention_days({}) == 14
    assert retention_days({"LEDGER_RETENTION_DAYS": "30"}) == 30
    with pytest.raises(ConfigurationError, match="LEDGER_RETENTION_DAYS"):
        retention_days({"LEDGER_RETENTION_DAYS": "0"})


def test_the_migration_names_a_missing_user_setting() -> None:
    with pytest.raises(ConfigurationError, match="APP_SECRET_ARN"):
        roles_from_env({"APP_DB_USER": "app"}, lambda arn: "pw")
    with pytest.raises(ConfigurationError, match="HEALTH_SECRET_ARN"):
        roles_from_env({"APP_DB_USER": "app", "APP_SECRET_ARN": "a", "HEALTH_DB_USER": "reader"}, lambda arn: "pw")
    roles = roles_from_env(
        {"APP_DB_USER": "app", "APP_SECRET_ARN": "a", "HEALTH_DB_USER": "reader", "HEALTH_SECRET_ARN": "h"},
        lambda arn: f"pw-{arn}",
    )
    assert [(role.name, role.password, role.privileges) for role in roles] == [
        ("app", "pw-a", ("SELECT", "INSERT", "UPDATE", "DELETE")),
        ("reader", "pw-h", ("SELECT",)),
    ]
    assert "pw-a" not in repr(roles)
