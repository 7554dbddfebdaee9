"""A ledger statement in one network round trip instead of pg8000's three, parameters still bound by the server.

pg8000 (1.31) runs a parameterised statement as three exchanges, each ending in a Sync and a wait for
the server: Parse; Describe (statement); Bind + Execute. It reads nothing from the Describe answer it
needs before Bind: parameters are sent as text with the types given at Parse (none here: every
parameter of the ledger's SQL is cast in the statement), and the row description comes back the same
from a Describe of the portal. So the whole extended-protocol exchange can go in one write, Parse,
Bind, Describe (portal), Execute, Sync, and be answered in one: what libpq's ``PQexecParams`` (and so
psycopg) sends. Values still travel in Bind, apart from the SQL text, so injection stays impossible;
the statement is unnamed, so nothing outlives the exchange and RDS Proxy has no prepared statement
to pin the session for (named, cached prepared statements would pin it). And, as libpq does, the
socket is set ``TCP_NODELAY`` (:func:`disable_nagle`), so a large statement's last segment leaves at once.

:class:`OneTripConnection` is that change as a subclass of ``pg8000.native.Connection`` overriding
the one method that sends the exchange; ``run``, errors (an ``ErrorResponse`` makes the server skip
to the Sync, so the connection stays usable), COPY streams and the unparameterised simple-query path
are pg8000's own. The benchmark measures it as the ``handler_one_trip`` case and counts the round
trips on the wire (:func:`wire_round_trips`).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import pg8000.native
from pg8000.converters import make_params
from pg8000.core import (
    BIND,
    DESCRIBE,
    EXECUTE_MSG,
    NULL_BYTE,
    PARSE,
    PORTAL,
    SYNC_MSG,
    Context,
    H_pack,
    _flush,
    _write,
    i_pack,
)
from pg8000.exceptions import InterfaceError

from bench.pgproxy import latency_proxy
from telemetry_adapter.ledger.connection import ConnectionProvider, Connector, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from telemetry_adapter.submission import Submission


def _message(code: bytes, body: bytes) -> bytes:
    """One protocol message: its type byte, its length (itself included), its body."""
    length: bytes = i_pack(len(body) + 4)
    return code + length + body


def disable_nagle(connection: Any) -> None:
    """Set ``TCP_NODELAY`` on a pg8000 connection's socket, as libpq does (a Unix socket has nothing to set).

    pg8000 leaves Nagle's algorithm on. A statement bigger than one segment (a claim of a few hundred
    submissions already is) then leaves its last partial segment waiting for the server's ACK of the
    ones before, which the server may delay (40 ms on Linux): measured here, up to a few tens of ms
    per large statement.
    """
    sock = connection._usock
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class OneTripConnection(pg8000.native.Connection):  # type: ignore[misc]  # pg8000 ships no type hints
    """``pg8000.native.Connection`` whose parameterised statements cost one round trip, sent without
    Nagle's delay (:func:`disable_nagle`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        disable_nagle(self)

    def execute_unnamed(
        self, statement: str, vals: Sequence[Any] = (), oids: Sequence[int] = (), stream: Any = None
    ) -> Any:
        """Parse, Bind, Describe (portal), Execute and Sync in one write; then read every answer up to
        ReadyForQuery (raising the server's error, if any, once the connection is back in step).

        Unlike pg8000's ``send_PARSE``/``send_BIND``, no Flush message follows each step, so the server
        answers once, at the Sync, as it does for libpq; and the exchange is handed to the socket in one
        write, not one per message.
        """
        context = Context(statement, stream=stream)
        exchange = b"".join(
            (
                _message(PARSE, self._parse_body(statement, oids)),
                _message(BIND, self._bind_body(make_params(self.py_types, vals))),
                _message(DESCRIBE, PORTAL + NULL_BYTE),
                EXECUTE_MSG,
                SYNC_MSG,
            )
        )
        try:
            _write(self._sock, exchange)  # one write: the kernel cuts it into full segments
            _flush(self._sock)
        except AttributeError:
            raise InterfaceError("connection is closed") from None
        self.handle_messages(context)
        return context

    def _parse_body(self, statement: str, oids: Sequence[int]) -> bytes:
        """Parse: the unnamed statement, its text, and the parameter types given (0: let the server infer)."""
        body = bytearray(NULL_BYTE + statement.encode(self._client_encoding) + NULL_BYTE + H_pack(len(oids)))
        for oid in oids:
            body.extend(i_pack(0 if oid == -1 else oid))
        return bytes(body)

    def _bind_body(self, params: Sequence[str | None]) -> bytes:
        """Bind the unnamed portal to the unnamed statement: every value as text, results as text (pg8000's formats)."""
        body = bytearray(NULL_BYTE + NULL_BYTE + H_pack(0) + H_pack(len(params)))
        for value in params:
            if value is None:
                body.extend(i_pack(-1))
            else:
                encoded = value.encode(self._client_encoding)
                body.extend(i_pack(len(encoded)) + encoded)
        body.extend(H_pack(0))
        return bytes(body)


def connect_one_trip(settings: DatabaseSettings, timeout_seconds: float | None = None) -> OneTripConnection:
    """A :class:`OneTripConnection` opened the ledger's own way (``DatabaseSettings.connect``: URL or IAM
    token, TLS as configured).

    The prototype re-types the connection pg8000 opened (the subclass adds behaviour, no state) rather
    than repeat the connection arguments. In the ledger itself ``DatabaseSettings.connect`` would build
    ``OneTripConnection`` directly, with the same arguments, and set ``TCP_NODELAY`` there.
    """
    connection = settings.connect(timeout_seconds)
    connection.__class__ = OneTripConnection
    disable_nagle(connection)
    return cast(OneTripConnection, connection)


def nodelay_connect(database_url: str) -> Connector:
    """pg8000's own connection (three round trips per statement) with ``TCP_NODELAY`` set: the socket
    option's share of the gain, measured on its own."""
    settings = DatabaseSettings.from_url(database_url)

    def connect(timeout_seconds: float | None = None) -> Any:
        connection = settings.connect(timeout_seconds)
        disable_nagle(connection)
        return connection

    return connect


def one_trip_connect(database_url: str) -> Connector:
    """What a ``ConnectionProvider`` calls to open a one-trip connection to ``database_url``."""
    settings = DatabaseSettings.from_url(database_url)
    return partial(connect_one_trip, settings)


def one_trip_ledger(database_url: str) -> Ledger:
    """The processor's ledger (same statements, same retry) on one-trip connections."""
    return Ledger(ConnectionProvider(one_trip_connect(database_url)))


@dataclass(frozen=True)
class WireTrips:
    """Round trips seen on the wire for each ledger statement of one batch."""

    claim: int
    outcome: int

    @property
    def per_batch(self) -> int:
        """Both statements."""
        return self.claim + self.outcome


def wire_round_trips(database_url: str, submissions: Sequence[Submission], *, one_trip: bool) -> WireTrips:
    """Claim and record ``submissions`` through a counting (zero-delay) proxy; the trips each statement cost.

    Leaves the submissions claimed and completed: reset the ledger afterwards.
    """
    with latency_proxy(database_url, 0.0) as proxy:
        settings = DatabaseSettings.from_url(proxy.url)
        connect: Connector = partial(connect_one_trip, settings) if one_trip else settings.connect
        provider = ConnectionProvider(connect)
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
