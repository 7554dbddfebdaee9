"""A PostgreSQL database for tests, ``make run`` and ``make bench``.

``TEST_DATABASE_URL`` (or ``DATABASE_URL``) names a server to use; a fresh, uniquely named database is
created on it and dropped afterwards, so runs never see each other's rows. Without either, an embedded
server from the ``pgserver`` package (pip-installed, no system PostgreSQL needed) is started in a
temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pg8000.native

from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations


class EmbeddedPostgresMissing(RuntimeError):
    """No server was named and the embedded one is not installed."""


def server_url_from_env() -> str | None:
    """The server URL the environment names, if any."""
    return os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or None


@contextlib.contextmanager
def embedded_server(data_dir: str | None = None) -> Iterator[str]:
    """Start an embedded PostgreSQL (pgserver) and yield its URL; stop it on exit."""
    try:
        import pgserver
    except ImportError as error:  # pragma: no cover - depends on the machine
        raise EmbeddedPostgresMissing(
            "no TEST_DATABASE_URL/DATABASE_URL and the embedded server is missing: "
            "run `make test` (it installs requirements-dev.txt) or `pip install pgserver`"
        ) from error
    with contextlib.ExitStack() as stack:
        directory = data_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="ta-pg-"))
        server = pgserver.get_server(directory, cleanup_mode="stop")  # type: ignore[attr-defined]
        stack.callback(server.cleanup)
        yield str(server.get_uri())


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
