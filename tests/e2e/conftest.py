"""The e2e tests run the local stack in process, against a fresh database on TEST_DATABASE_URL's server
when set (given to the stack as ``--database-url`` would give it), else the stack's own embedded
PostgreSQL, with its output routed to a log file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from devkit.postgres import fresh_database, server_url_from_env


@pytest.fixture
def stack_database() -> Iterator[str | None]:
    """The database for ``Options.database_url``: a fresh one (migrated by the stack), or None (embedded)."""
    with contextlib.ExitStack() as stack:
        server = server_url_from_env()
        yield stack.enter_context(fresh_database(server, migrate=False)) if server else None
