"""The comparison the ledger's connection is measured against: pg8000's own exchange.

The ledger talks to PostgreSQL through :class:`telemetry_adapter.ledger.wire.OneTripConnection`: one
round trip per statement, ``TCP_NODELAY`` set. The benchmark keeps what it replaced beside it, so the
report shows the difference: pg8000's ``Connection`` as it is (three round trips per statement,
Nagle's algorithm on), and the same with only ``TCP_NODELAY`` set (the socket option's share of the
gain, measured on its own). Both are opened with the ledger's own connection arguments
(``DatabaseSettings.connection_arguments``: URL or IAM token, TLS as configured).

:func:`wire_round_trips` counts the round trips each statement costs on the wire, through the counting
proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pg8000.native

from devkit.pgproxy import latency_proxy
from telemetry_adapter.ledger.connection import ConnectionProvider, Connector, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from telemetry_adapter.ledger.wire import set_nodelay
from telemetry_adapter.submission import Submission

ConnectorFor = Callable[[str], Connector]
"""Builds a connector for a database URL."""


def product_connect(database_url: str) -> Connector:
    """The ledger's own connection: one round trip per statement, ``TCP_NODELAY`` set."""
    return DatabaseSettings.from_url(database_url).connect


def pg8000_default_connect(database_url: str) -> Connector:
    """pg8000's ``Connection`` as it is: three round trips per statement, Nagle's algorithm on."""
    settings = DatabaseSettings.from_url(database_url)

    def connect(timeout_seconds: float | None = None) -> pg8000.native.Connection:
        return pg8000.native.Connection(**settings.connection_arguments(timeout_seconds))

    return connect


def nodelay_connect(database_url: str) -> Connector:
    """pg8000's ``Connection`` (three round trips per statement) with only ``TCP_NODELAY`` set."""
    default = pg8000_default_connect(database_url)

    def connect(timeout_seconds: float | None = None) -> pg8000.native.Connection:
        connection = default(timeout_seconds)
        set_nodelay(connection._usock)
        return connection

    return connect


def pg8000_default_ledger(database_url: str) -> Ledger:
    """The processor's ledger (same statements, same retry) on pg8000's default exchange."""
    return Ledger(ConnectionProvider(pg8000_default_connect(database_url)))


@dataclass(frozen=True)
class WireTrips:
    """Round trips seen on the wire for each ledger statement of one batch."""

    claim: int
    outcome: int

    @property
    def per_batch(self) -> int:
        """Both statements."""
        return self.claim + self.outcome


def wire_round_trips(database_url: str, submissions: Sequence[Submission], connector_for: ConnectorFor) -> WireTrips:
    """Claim and record ``submissions`` through a counting (zero-delay) proxy on the connection
    ``connector_for`` builds; the trips each statement cost.

    Leaves the submissions claimed and completed: reset the ledger afterwards.
    """
    with latency_proxy(database_url, 0.0) as proxy:
        provider = ConnectionProvider(connector_for(proxy.url))
        ledger = Ledger(provider)
        try:
            provider.get()  # connect first: the start-up exchange is not a statement
            requests = [ClaimRequest(s.submission_id, s.device_id, s.digest, len(s.events)) for s in submissions]
            before = proxy.round_trips
            ledger.claim(requests, owner="bench-wire", lease_seconds=60.0)
            claimed = proxy.round_trips
            ledger.record_outcome(
                {request.submission_id: request.event_count for request in requests},
                owner="bench-wire",
                worker="bench-wire",
                batch_size=len(requests),
            )
            return WireTrips(claim=claimed - before, outcome=proxy.round_trips - claimed)
        finally:
            provider.discard()
