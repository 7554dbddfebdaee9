"""How the ledger talks to PostgreSQL: one network round trip per statement, parameters bound by the server.

pg8000's ``Connection.run`` sends a statement with parameters as three exchanges, each ending in a
Sync and a wait for the server: Parse; Describe (statement); Bind and Execute. Nothing it reads from
the first two answers is needed for the third: every value is sent as text, typed by the statement
itself (each parameter of the ledger's SQL is cast there), and a Describe of the portal returns the
same row description. :class:`OneTripConnection` therefore sends the whole extended-protocol exchange
in one write, Parse, Bind, Describe (portal), Execute, Sync, and reads one answer: what libpq's
``PQexecParams`` (and so psycopg) sends. Over the network that saves two round trips per statement,
four per batch.

What does not change:

* **Parameters stay out of the SQL text.** Values travel in the Bind message, never in the statement,
  so no value can be read as SQL.
* **Nothing outlives the exchange.** The statement and portal are the unnamed ones, replaced by the
  next statement. Named prepared statements would make RDS Proxy pin the session to one client.
* **Errors leave the connection usable.** After an ``ErrorResponse`` the server skips every message up
  to the Sync and answers ReadyForQuery; the error is raised once that has been read, so the next
  statement starts in step. A connection that breaks mid-exchange raises pg8000's ``InterfaceError``
  (or, when the server said why before closing, its ``DatabaseError`` with a class 08 or 57P SQLSTATE),
  which :func:`telemetry_adapter.ledger.connection.is_connection_failure` recognises.
* Statements without parameters (``run`` without arguments, ``execute_simple``) keep pg8000's simple
  query protocol: already one round trip, and the only one that runs a multi-statement script, as the
  migrations do. Named prepared statements (``prepare``) stay pg8000's own. COPY starts with this
  exchange and streams its data as pg8000 does (the server ignores a Sync while it copies in).

The socket is also set ``TCP_NODELAY``, as libpq does (pg8000 leaves Nagle's algorithm on): a
statement larger than one TCP segment (a claim of a hundred submissions already is) would otherwise
keep its last segment back until the server acknowledged the ones before, which Linux delays by up to
40 ms.

pg8000 internals this depends on, all in the pinned 1.31 release (``requirements.txt``): that
``pg8000.native.Connection.run`` sends every statement with parameters through ``execute_unnamed``;
the message constants, ``Context``, ``_write``, ``_flush`` and the packers of ``pg8000.core``;
``pg8000.converters.make_params``; and the connection's ``_sock`` (buffered socket file), ``_usock``
(the socket, or the TLS socket over it), ``_client_encoding``, ``py_types`` and ``handle_messages``.
The tests count the round trips on the wire, so an upgrade that changes any of it fails them.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

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

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_LET_THE_SERVER_INFER = 0
"""Parameter type OID 0 in Parse: the server takes the type from the statement (pg8000's ``-1``)."""


def set_nodelay(sock: socket.socket) -> None:
    """Turn Nagle's algorithm off on a TCP socket (a TLS socket passes it to the TCP one beneath);
    a Unix socket has no such option and is left alone."""
    if sock.family in _TCP_FAMILIES:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class OneTripConnection(pg8000.native.Connection):  # type: ignore[misc]  # pg8000 ships no type hints
    """``pg8000.native.Connection`` whose statements with parameters cost one round trip, sent
    without Nagle's delay. Takes pg8000's connection arguments."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        set_nodelay(self._usock)

    def execute_unnamed(
        self, statement: str, vals: Sequence[Any] = (), oids: Sequence[int] = (), stream: Any = None
    ) -> Any:
        """Send Parse, Bind, Describe (portal), Execute and Sync in one write, then read every answer
        up to ReadyForQuery, raising the server's error, if any, once the connection is back in step.

        The whole exchange is built before anything is written, so a value pg8000 cannot encode (a
        lone surrogate, an unsupported type) raises with nothing sent. Unlike pg8000's own messages,
        no Flush follows each step: the server answers once, at the Sync.
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
        except (AttributeError, ValueError):  # pg8000 sets _sock to None on close; a closed file
            raise InterfaceError("connection is closed") from None
        self.handle_messages(context)
        return context

    def _parse_body(self, statement: str, oids: Sequence[int]) -> bytes:
        """Parse: the unnamed statement, its text, and the parameter types pg8000 was given, if any."""
        body = bytearray(NULL_BYTE + statement.encode(self._client_encoding) + NULL_BYTE + H_pack(len(oids)))
        for oid in oids:
            body.extend(i_pack(_LET_THE_SERVER_INFER if oid == -1 else oid))
        return bytes(body)

    def _bind_body(self, params: Sequence[str | None]) -> bytes:
        """Bind the unnamed portal to the unnamed statement: every value as text (NULL as length -1),
        every result column as text, as pg8000 does."""
        body = bytearray(NULL_BYTE + NULL_BYTE + H_pack(0) + H_pack(len(params)))
        for value in params:
            if value is None:
                body.extend(i_pack(-1))
            else:
                encoded = value.encode(self._client_encoding)
                body.extend(i_pack(len(encoded)) + encoded)
        body.extend(H_pack(0))
        return bytes(body)


def _message(code: bytes, body: bytes) -> bytes:
    """One protocol message: its type byte, its length (itself included), its body."""
    length: bytes = i_pack(len(body) + 4)
    return code + length + body
