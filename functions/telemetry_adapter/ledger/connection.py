"""Connections to the ledger database over pg8000.

Two ways in, chosen by the environment:

* ``DATABASE_URL`` (``postgresql://user:pass@host:port/db``, optional ``?sslmode=require|verify-full``
  and ``?host=/socket/dir`` for a Unix socket) wins when set: local runs, tests, ``sam local invoke``.
* ``DB_HOST``/``DB_PORT``/``DB_NAME``/``DB_USER``: the RDS Proxy endpoint in AWS. The password is an
  IAM auth token signed locally by boto3 (valid 15 minutes: enough to open a connection, not to keep
  one), and TLS verifies the proxy's certificate against the default trust store, where the Amazon
  roots that RDS Proxy certificates chain to already live, so no CA bundle is downloaded.

Every connection is a :class:`~telemetry_adapter.ledger.wire.OneTripConnection`: pg8000's, with each
statement in one network round trip. :class:`ConnectionProvider` keeps one connection per process,
reused across invocations, and opens a new one transparently when the old one has died or sat idle
too long.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native

from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.wire import OneTripConnection
from telemetry_adapter.time_budget import DEFAULT_STATEMENT_TIMEOUT_MS

# Socket timeout for connecting, and for every statement unless the ledger sets a shorter one from the
# invocation's remaining time: a hung database costs at most this long (a claim of 10,000 rows takes
# well under a second), never the whole invocation. A socket timeout bounds each read, not the
# statement, so each statement also has a wall-clock limit (``statement_time_limit``). No server-side
# statement_timeout: a SET would pin the connection in RDS Proxy, which also refuses the ``options``
# start-up parameter that could carry it.
_SOCKET_TIMEOUT_SECONDS = DEFAULT_STATEMENT_TIMEOUT_MS / 1000
_DEFAULT_PORT = 5432
# SQLSTATE classes that mean the session is gone: connection exceptions (08) and operator
# intervention (57P: admin shutdown, pg_terminate_backend, crash shutdown, cannot connect now).
_CONNECTION_SQLSTATES = ("08", "57P")


class StatementTimedOut(TimeoutError):
    """A statement outlived its wall-clock allowance: its connection was cut (and is not used again)."""


def is_connection_failure(error: BaseException) -> bool:
    """Whether ``error`` means the connection is dead (so a fresh one may succeed)."""
    if isinstance(error, pg8000.native.InterfaceError | OSError):
        return True
    if isinstance(error, pg8000.native.DatabaseError) and error.args and isinstance(error.args[0], dict):
        return str(error.args[0].get("C", "")).startswith(_CONNECTION_SQLSTATES)
    return False


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the ledger lives and how to authenticate to it. Never logged: it may hold a password."""

    host: str | None
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)
    """Kept out of ``repr``, so logging the settings (or a traceback showing them) cannot leak it."""
    unix_socket: str | None = None
    tls: str = "disable"
    """``disable``, ``require`` (encrypted, unverified) or ``verify-full`` (certificate and hostname)."""
    iam_region: str | None = None
    """When set, the password is an RDS IAM auth token generated for this region at connect time."""
    timeout_seconds: float = _SOCKET_TIMEOUT_SECONDS
    """Socket timeout for connecting and for each statement (the health check uses a shorter one)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DatabaseSettings:
        """``DATABASE_URL`` when set, otherwise the RDS Proxy variables with IAM auth and verified TLS."""
        source = os.environ if env is None else env
        url = source.get("DATABASE_URL", "").strip()
        if url:
            return cls.from_url(url)
        missing = [name for name in ("DB_HOST", "DB_NAME", "DB_USER") if not source.get(name, "").strip()]
        if missing:
            raise ConfigurationError(
                f"set DATABASE_URL, or DB_HOST, DB_PORT, DB_NAME and DB_USER; missing: {', '.join(missing)}"
            )
        port_text = source.get("DB_PORT", str(_DEFAULT_PORT)).strip() or str(_DEFAULT_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65_536:
            raise ConfigurationError(f"DB_PORT must be a TCP port, got {port_text!r}")
        region = source.get("AWS_REGION") or source.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigurationError("AWS_REGION is required for RDS IAM authentication")
        return cls(
            host=source["DB_HOST"].strip(),
            port=int(port_text),
            database=source["DB_NAME"].strip(),
            user=source["DB_USER"].strip(),
            tls="verify-full",
            iam_region=region,
        )

    @classmethod
    def from_url(cls, url: str) -> DatabaseSettings:
        """Parse a ``postgresql://`` URL; raise ConfigurationError (without echoing secrets) if bad."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigurationError("DATABASE_URL must start with postgresql://")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        tls = query.get("sslmode", "disable")
        if tls not in ("disable", "prefer", "require", "verify-ca", "verify-full"):
            raise ConfigurationError(f"DATABASE_URL sslmode {tls!r} is not supported")
        try:
            port = parts.port or _DEFAULT_PORT
        except ValueError:
            raise ConfigurationError("DATABASE_URL has an invalid port") from None
        database = unquote(parts.path.lstrip("/")) or "postgres"
        if not parts.username:
            raise ConfigurationError("DATABASE_URL must name a user")
        return cls(
            host=parts.hostname,
            port=port,
            database=database,
            user=unquote(parts.username),
            password=unquote(parts.password) if parts.password else None,
            unix_socket=_socket_path(query.get("host"), port),
            tls={"prefer": "require", "verify-ca": "verify-full"}.get(tls, tls),
        )

    def connect(self, timeout_seconds: float | None = None) -> OneTripConnection:
        """Open a new connection (generating an IAM token first when configured) within
        ``timeout_seconds`` (default ``self.timeout_seconds``) on the wall clock, or raise
        :class:`StatementTimedOut`.

        The socket timeout bounds each read of the start-up exchange (TLS, authentication, parameter
        status), not the exchange: answers that trickle in, a slice inside every timeout, would hold
        the connect for as long as the path cares to. So the socket is opened here and handed to
        pg8000 (``sock=``) under the same shut-down timer a statement runs under
        (:class:`StatementLimit`), armed before the first start-up byte is sent.

        The connection is pg8000's with each statement in one network round trip and Nagle's
        algorithm off (:mod:`telemetry_adapter.ledger.wire`), whoever opens it: the processor, the
        health check, the clean-up, the migration, the operators' tool."""
        seconds = self.timeout_seconds if timeout_seconds is None else timeout_seconds
        ends_at = time.monotonic() + seconds
        arguments = self.connection_arguments(seconds)
        sock = _open_socket(arguments.pop("unix_sock", None), self.host, self.port, seconds)
        handle = sock.dup()  # TLS takes the socket over; a duplicate still reaches it to shut it down
        try:
            with _cut_when_late(handle, ends_at - time.monotonic(), "not connected") as limit:
                try:
                    connection = OneTripConnection(sock=sock, **arguments)
                except Exception:
                    with contextlib.suppress(OSError):
                        sock.close()
                    raise
        finally:
            handle.close()
        if limit.cut:  # connected as the limit passed: the socket is shut, the connection unusable
            with contextlib.suppress(Exception):
                connection.close()
            raise StatementTimedOut(f"not connected within {seconds:.3f} s")
        return connection

    def connection_arguments(self, timeout_seconds: float | None = None) -> dict[str, Any]:
        """pg8000's connection arguments for these settings: host or Unix socket, credentials (a fresh
        IAM token when configured), TLS context, socket timeout."""
        kwargs: dict[str, Any] = {
            "user": self.user,
            "database": self.database,
            "timeout": self.timeout_seconds if timeout_seconds is None else timeout_seconds,
            "application_name": "telemetry-adapter",
        }
        if self.unix_socket:
            kwargs["unix_sock"] = self.unix_socket
        else:
            kwargs["host"] = self.host
            kwargs["port"] = self.port
        kwargs["password"] = self._iam_token() if self.iam_region else self.password
        if self.tls != "disable":
            kwargs["ssl_context"] = _ssl_context(verify=self.tls == "verify-full")
        return kwargs

    def _iam_token(self) -> str:
        import boto3  # local import: only the RDS Proxy path pays for the client

        client = boto3.client("rds", region_name=self.iam_region)
        token: str = client.generate_db_auth_token(
            DBHostname=self.host or "", Port=self.port, DBUsername=self.user, Region=self.iam_region
        )
        return token


class Connector(Protocol):
    """Opens a connection, waiting at most ``timeout_seconds`` (the connector's default when None)."""

    def __call__(self, timeout_seconds: float | None = None) -> pg8000.native.Connection: ...


class ConnectionProvider:
    """One connection per process, reused across invocations and replaced when it has died, or when
    it sat idle longer than ``max_idle_seconds`` (the network or RDS Proxy may have dropped it
    silently meanwhile, and finding out would cost a whole statement timeout).

    Idle time is measured on the wall clock, which, unlike the monotonic clock, is set right again
    when a frozen Lambda execution environment thaws.
    """

    def __init__(
        self,
        connect: Connector,
        *,
        max_idle_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connect = connect
        self._max_idle_seconds = max_idle_seconds
        self._clock = clock
        self._connection: pg8000.native.Connection | None = None
        self._last_used = 0.0
        self.connects = 0
        """Connections opened so far (tests and benchmarks read it)."""

    @property
    def ready(self) -> bool:
        """Whether :meth:`get` would return the open connection without connecting."""
        if self._connection is None:
            return False
        if self._max_idle_seconds is None:
            return True
        idle = self._clock() - self._last_used
        return 0 <= idle <= self._max_idle_seconds

    def get(self, timeout_seconds: float | None = None) -> pg8000.native.Connection:
        """The open connection, or a new one (waiting at most ``timeout_seconds`` to connect) when
        there is none or the open one sat idle too long."""
        if not self.ready:
            self.discard()
            self._connection = self._connect(timeout_seconds) if timeout_seconds is not None else self._connect()
            self.connects += 1
        self._last_used = self._clock()
        assert self._connection is not None
        return self._connection

    def discard(self) -> None:
        """Forget the current connection (after an error that leaves it unusable)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it is already broken; closing is a courtesy
                connection.close()


def set_statement_timeout(connection: pg8000.native.Connection, seconds: float) -> None:
    """Make every wait for the server on ``connection`` last at most ``seconds`` from now on.

    pg8000 applies its ``timeout`` to the socket once, at connect time; the socket it reads and
    writes through (``_usock``, the TLS socket when TLS is on) takes a new one at any moment, and
    its buffered reader honours it on the next read. Should a pg8000 release rename that attribute,
    the connect-time timeout (never longer than the statement timeout) still applies; a test holds
    the pinned release to the per-statement one.
    """
    sock = getattr(connection, "_usock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


class StatementLimit:
    """A statement's wall-clock limit: when it passes before the statement ends, the connection's
    socket is shut down, so the read pg8000 is blocked in (or its next one) fails at once.

    Socket timeouts bound each read only: an answer that trickles in, a slice inside every timeout,
    would hold the statement for as long as the server or a path in between cares to. A timer thread
    (one per statement, ended by :meth:`finish` or by firing) cuts it instead; the lock makes the cut
    and the statement's end exclusive, so a statement that ended in time never loses its connection."""

    def __init__(self, sock: socket.socket | None, seconds: float) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._finished = False
        self.cut = False
        """Whether the limit passed and the connection was cut (it must then be discarded)."""
        self._timer = threading.Timer(max(seconds, 0.001), self._cut)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def finish(self) -> None:
        """The statement ended (answered or failed): the limit no longer applies."""
        with self._lock:
            self._finished = True
        self._timer.cancel()

    def _cut(self) -> None:
        with self._lock:
            if self._finished or self._sock is None:
                return
            self.cut = True
            # The plain socket's shutdown, beneath TLS when TLS is on: from another thread, only the
            # reader should see the end (an SSLSocket's own shutdown would tear its state down too).
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)


@contextlib.contextmanager
def statement_time_limit(connection: pg8000.native.Connection, seconds: float) -> Iterator[StatementLimit]:
    """Bound the statement run inside the block to ``seconds`` from now, per read (the socket timeout)
    and as a whole (:class:`StatementLimit`). A statement cut by the limit raises
    :class:`StatementTimedOut` (a connection failure); check ``cut`` after a statement that ended anyway."""
    set_statement_timeout(connection, seconds)
    with _cut_when_late(getattr(connection, "_usock", None), seconds, "no answer") as limit:
        yield limit


@contextlib.contextmanager
def _cut_when_late(sock: socket.socket | None, seconds: float, what: str) -> Iterator[StatementLimit]:
    """Run the block under a :class:`StatementLimit` on ``sock``: an error the cut caused becomes
    :class:`StatementTimedOut` ("``what`` within ..."); the limit is finished however the block ends."""
    limit = StatementLimit(sock, seconds)
    limit.start()
    try:
        yield limit
    except Exception as error:
        limit.finish()
        if limit.cut:
            raise StatementTimedOut(f"{what} within {seconds:.3f} s") from error
        raise
    finally:
        limit.finish()


def _open_socket(
    unix_socket: str | None,
    host: str | None,
    port: int,
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> socket.socket:
    """A connected socket (TCP with keep-alive, as pg8000 opens it, or Unix), with ``timeout_seconds``
    as its timeout for every read until a statement sets its own.

    The TCP connect shares ``timeout_seconds`` among the host's addresses: ``socket.create_connection``
    would give each address the whole timeout, so a name with several unreachable addresses (a proxy
    endpoint can have more than one) would take a multiple of it. The name lookup itself is outside
    the bound (in a VPC it is answered by the resolver next to the function)."""
    ends_at = clock() + timeout_seconds
    try:
        if unix_socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(max(timeout_seconds, 0.001))
                sock.connect(unix_socket)
            except OSError:
                sock.close()
                raise
            return sock
        sock = _connect_within(host or "localhost", port, ends_at, clock)
    except OSError as error:
        raise pg8000.native.InterfaceError(f"cannot connect to the ledger database: {error}") from error
    sock.settimeout(max(timeout_seconds, 0.001))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def _connect_within(host: str, port: int, ends_at: float, clock: Callable[[], float]) -> socket.socket:
    """Try the host's addresses in turn, each with what is left until ``ends_at``; raise the last error,
    or TimeoutError when the time ran out before an address could be tried."""
    last: OSError = TimeoutError(f"no time left to connect to {host}:{port}")
    for family, kind, protocol, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        left = ends_at - clock()
        if left <= 0:
            break
        sock = socket.socket(family, kind, protocol)
        try:
            sock.settimeout(left)
            sock.connect(address)
        except OSError as error:
            sock.close()
            last = error
            continue
        return sock
    raise last


def _socket_path(directory: str | None, port: int) -> str | None:
    if not directory:
        return None
    return directory if directory.endswith(f".s.PGSQL.{port}") else f"{directory.rstrip('/')}/.s.PGSQL.{port}"


def _ssl_context(*, verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
