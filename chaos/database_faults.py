"""Faults at the database server: backends killed mid-batch, and restarts.

Both act from a separate admin connection, the way an operator or a failover would, never by touching
the processor's objects. A restart is real for the embedded server (``pg_ctl restart -m fast``). The
machine's shared server must not be restarted under the other users, so for it a restart is emulated:
every backend of the chaos database is terminated and new connections are refused for a moment
(``ALTER DATABASE ... ALLOW_CONNECTIONS false``, then ``true``), which is what clients see of a restart.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import pg8000.native

from devkit.embedded_postgres import EmbeddedPostgres, embedded_postgres
from devkit.postgres import connect, fresh_database, server_url_from_env
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations

_PROCESSOR_APPLICATION = "telemetry-adapter"


class Restarter(Protocol):
    """Makes the database unavailable for a moment, the way a restart does."""

    kind: str

    def restart(self, seconds: float) -> None: ...


def _admin(url: str) -> pg8000.native.Connection:
    return DatabaseSettings.from_url(url).connect()


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@dataclass
class EmulatedRestart:
    """A restart as the clients of one database see it, without touching the rest of the server."""

    server_url: str
    database: str
    kind: str = "emulated (terminate backends, refuse connections)"

    def restart(self, seconds: float) -> None:
        """Refuse connections to the database, terminate its backends, wait, accept again."""
        admin = _admin(self.server_url)
        try:
            admin.run(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false')
            try:
                admin.run(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()",
                    db=self.database,
                )
                time.sleep(seconds)
            finally:
                admin.run(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true')
        finally:
            admin.close()


@dataclass
class EmbeddedRestart:
    """A real restart of the embedded server (fast shutdown: active sessions are aborted)."""

    server: EmbeddedPostgres
    kind: str = "real (embedded server: pg_ctl stop -m fast, then start)"

    def restart(self, seconds: float) -> None:
        """Stop the server, stay down ``seconds``, start it again (unless the run is ending)."""
        self.server.restart(seconds)


class DatabaseSaboteur:
    """Kills the processors' backends and restarts the database; counts what it did."""

    def __init__(self, database_url: str, server_url: str, restarter: Restarter, *, seed: int) -> None:
        self.database_url = database_url
        self.server_url = server_url
        self.restarter = restarter
        self._rng = random.Random(seed)  # noqa: S311 - fault schedule, not cryptography
        self._lock = threading.Lock()
        self._restart_thread: threading.Thread | None = None
        self.kills = 0
        self.backends_terminated = 0
        self.restarts = 0
        self.errors = 0

    def kill_processor_backends(self) -> None:
        """Terminate every processor session of the chaos database (pg_terminate_backend)."""
        try:
            admin = _admin(self.server_url)
        except Exception:  # the database may be restarting right now; then there is nothing to kill
            with self._lock:
                self.errors += 1
            return
        try:
            rows = admin.run(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = :db AND application_name = :app AND pid <> pg_backend_pid()",
                db=_database_name(self.database_url),
                app=_PROCESSOR_APPLICATION,
            )
        finally:
            admin.close()
        with self._lock:
            self.kills += 1
            self.backends_terminated += int(rows[0][0])

    def restart_in_background(self, seconds: tuple[float, float]) -> bool:
        """Start a restart unless one is running; return whether one started."""
        with self._lock:
            if self._restart_thread is not None and self._restart_thread.is_alive():
                return False
            down = self._rng.uniform(*seconds)
            self._restart_thread = threading.Thread(target=self._restart, args=(down,), name="db-restart")
            self.restarts += 1
            self._restart_thread.start()
        return True

    def wait(self) -> None:
        """Wait for a running restart to finish (the database is up again afterwards)."""
        thread = self._restart_thread
        if thread is not None:
            thread.join(timeout=120)

    def _restart(self, seconds: float) -> None:
        try:
            self.restarter.restart(seconds)
        except Exception:
            with self._lock:
                self.errors += 1

    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        return {
            "database_connection_kills": self.kills,
            "database_backends_terminated": self.backends_terminated,
            "database_restarts": self.restarts,
        }


@dataclass(frozen=True)
class ChaosDatabase:
    """A fresh, migrated database, the server it lives on, and how that server can restart."""

    url: str
    server_url: str
    restarter: Restarter


@contextlib.contextmanager
def chaos_database(server_url: str | None = None) -> Iterator[ChaosDatabase]:
    """A fresh database on the named server (emulated restarts) or an own embedded server (real ones).

    The embedded server is the run's alone, so its ``postgres`` database is the chaos database; the
    server and its data directory are gone when the block ends, even with a restart in flight.
    """
    server_url = server_url or server_url_from_env()
    with contextlib.ExitStack() as stack:
        if server_url:
            url = stack.enter_context(fresh_database(server_url))
            restarter: Restarter = EmulatedRestart(server_url, _database_name(url))
        else:
            server = stack.enter_context(embedded_postgres())
            server_url = url = server.url
            connection = connect(url)
            try:
                apply_migrations(connection)
            finally:
                connection.close()
            restarter = EmbeddedRestart(server)
        yield ChaosDatabase(url, server_url, restarter)
