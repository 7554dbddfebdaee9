"""Versioned SQL migrations and the runner that applies them.

Migrations are the ``NNNN_name.sql`` files beside this module, applied in version order, each once,
recorded in ``schema_migrations``. The runner is safe to run twice and from two processes at once:
it takes a transaction-scoped advisory lock first, so a second runner waits, then finds nothing left
to do. Everything a run applies commits together or not at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import pg8000.native

# Arbitrary, fixed key for pg_advisory_xact_lock: "telemetry adapter migrations".
_LOCK_KEY = 0x7E1E_3E7A
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version, name and text."""

    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("telemetry_adapter.ledger").joinpath("migrations").iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def pending_migrations(connection: pg8000.native.Connection) -> list[Migration]:
    """The migrations not applied yet, in order; reads only (``make migrate ARGS=--dry-run``)."""
    exists = connection.run("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
    applied = {row[0] for row in connection.run("SELECT version FROM schema_migrations")} if exists else set()
    return [migration for migration in available_migrations() if migration.version not in applied]


def apply_migrations(connection: pg8000.native.Connection) -> list[int]:
    """Apply every pending migration in one transaction; return the versions applied now."""
    connection.run("START TRANSACTION")
    try:
        connection.run("SELECT pg_advisory_xact_lock(:key)", key=_LOCK_KEY)
        connection.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row[0] for row in connection.run("SELECT version FROM schema_migrations")}
        done = []
        for migration in available_migrations():
            if migration.version in applied:
                continue
            connection.execute_simple(migration.sql)
            connection.run(
                "INSERT INTO schema_migrations (version, name) VALUES (:version, :name)",
                version=migration.version,
                name=migration.name,
            )
            done.append(migration.version)
        connection.run("COMMIT")
    except BaseException:
        connection.run("ROLLBACK")
        raise
    return done
