"""Database fault injection: every N seconds, terminate the ledger's sessions with pg_terminate_backend.

To the processor this looks like a database restart or an RDS Proxy failover: the next statement on
its pooled connection fails, and the ledger must reconnect and carry on without losing or reordering
anything. Only sessions of the adapter (``application_name = 'telemetry-adapter'``) in the run's own
database are touched, never anyone else's.
"""

from __future__ import annotations

import threading

from local_stack.tally import Tally
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.observability import logger

_TERMINATE_SQL = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'telemetry-adapter'
"""


def terminate_sessions(database_url: str) -> int:
    """Terminate the adapter's sessions on the database; return how many."""
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        rows = connection.run(_TERMINATE_SQL)
    finally:
        connection.close()
    return int(rows[0][0]) if rows else 0


class DatabaseRestarter:
    """Terminates the ledger's sessions periodically on a thread."""

    def __init__(self, database_url: str, every: float, tally: Tally) -> None:
        self._database_url = database_url
        self._every = every
        self._tally = tally
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="db-restarts", daemon=True)

    def start(self) -> None:
        """Start injecting."""
        self._thread.start()

    def stop(self) -> None:
        """Stop injecting."""
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                terminated = terminate_sessions(self._database_url)
            except Exception:
                logger.exception("could not terminate database sessions")
                continue
            self._tally.add(db_restarts=1, db_sessions_terminated=terminated)
