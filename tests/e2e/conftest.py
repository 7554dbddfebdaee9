"""The e2e tests run the local stack in process, against a fresh database on TEST_DATABASE_URL's server
when set (else the stack's own embedded PostgreSQL), with its output routed to a log file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from devkit.postgres import fresh_database, server_url_from_env


@pytest.fixture
def stack_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """DATABASE_URL for the stack: a fresh migrated-later database, or unset (embedded server)."""
    with contextlib.ExitStack() as stack:
        server = server_url_from_env()
        if server:
            url = stack.enter_context(fresh_database(server, migrate=False))
            monkeypatch.setenv("DATABASE_URL", url)
            yield url
        else:
            monkeypatch.delenv("DATABASE_URL", raising=False)
            yield None
