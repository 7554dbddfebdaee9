"""A PostgreSQL database for tests, ``make bench`` and ``make chaos``.

``TEST_DATABASE_URL`` names a server to use; a fresh, uniquely named database is created on it and
dropped afterwards, so runs never see each other's rows. Without it, an embedded server
(:mod:`devkit.embedded_postgres`) is started in a temporary folder and stopped, folder and all, when
the run ends. ``DATABASE_URL`` is deliberately not read here: it is the product's own setting and may
name a real ledger, which no development tool should write test data into.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pg8000.native

from devkit.embedded_postgres import EmbeddedPostgresMissing, embedded_postgres
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations

__all__ = [
    "EmbeddedPostgresMissing",
    "connect",
    "embedded_server",
    "fresh_database",
    "provisioned_database",
    "server_url_from_env",
]


def server_url_from_env() -> str | None:
    """The server ``TEST_DATABASE_URL`` names, if any."""
    return os.environ.get("TEST_DATABASE_URL", "").strip() or None


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start an embedded PostgreSQL and yield its URL; stop it and delete its data on exit."""
    with embedded_postgres() as server:
        yield server.url


@contextlib.contextmanager
def fresh_database(server_url: str, *, migrate: bool = True) -> Iterator[str]:
    """Create a uniquely named database on ``server_url``, migrated; yield its URL; drop it on exit."""
    name = f"ta_{uuid.uuid4().hex[:12]}"
    admin = DatabaseSettings.from_url(server_url).connect()
    try:
        admin.run(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    url = _with_database(server_url, name)
    try:
        if migrate:
            connection = DatabaseSettings.from_url(url).connect()
            try:
                apply_migrations(connection)
            finally:
                connection.close()
        yield url
    finally:
        admin = DatabaseSettings.from_url(server_url).connect()
        try:
            admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


@contextlib.contextmanager
def provisioned_database(*, migrate: bool = True) -> Iterator[str]:
    """A fresh database on the named server, or on an embedded one when none is named."""
    with contextlib.ExitStack() as stack:
        server = server_url_from_env() or stack.enter_context(embedded_server())
        yield stack.enter_context(fresh_database(server, migrate=migrate))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def connect(url: str) -> pg8000.native.Connection:
    """A plain connection to ``url``."""
    return DatabaseSettings.from_url(url).connect()
