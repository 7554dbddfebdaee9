"""Database fault injection.

``--db-restart-every``: every N seconds, terminate the ledger's sessions with pg_terminate_backend. To
the processor this looks like a database restart or an RDS Proxy failover: the next statement on its
pooled connection fails, and the ledger must reconnect and carry on without losing or reordering
anything. Only sessions of the adapter (``application_name = 'telemetry-adapter'``) in the run's own
database are touched, never anyone else's.

``--ledger-outage``: the processor and the health endpoint reach the ledger through a loopback proxy
(:class:`devkit.pgproxy.LatencyProxy`, no added latency); for the outage it drops their connections
and closes every new one on arrival, so each claim, outcome and health query fails as it would with the
database or RDS Proxy unreachable, until the outage ends.
"""

from __future__ import annotations

import threading

from devkit.pgproxy import LatencyProxy
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


class LedgerOutage:
    """Holds the ledger unreachable through ``proxy`` from ``starts_after`` seconds for ``seconds``, on a thread."""

    def __init__(self, proxy: LatencyProxy, *, starts_after: float, seconds: float, tally: Tally) -> None:
        self._proxy = proxy
        self._starts_after = starts_after
        self._seconds = seconds
        self._tally = tally
        self._stop = threading.Event()
        self.ended = threading.Event()
        """Set once the ledger is reachable again (or the outage was stopped before its end)."""
        self._thread = threading.Thread(target=self._run, name="ledger-outage", daemon=True)

    def start(self) -> None:
        """Start the countdown to the outage."""
        self._thread.start()

    def stop(self) -> None:
        """End the outage now if it is on (the ledger is always reachable after this)."""
        self._stop.set()
        self._thread.join(10)
        self._end()

    def _run(self) -> None:
        if self._stop.wait(self._starts_after):
            return
        self._proxy.refuse_connections()
        self._tally.set(ledger="down")
        self._tally.add(ledger_outages=1)
        logger.warning("ledger outage: connections refused", extra={"seconds": self._seconds})
        self._stop.wait(self._seconds)
        self._end()

    def _end(self) -> None:
        if self._proxy.refusing:
            self._proxy.accept_connections()
            self._tally.set(ledger="up")
            logger.warning("ledger outage over: connections accepted")
        self.ended.set()
