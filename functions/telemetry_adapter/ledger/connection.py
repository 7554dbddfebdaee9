"""Connections to the ledger database over pg8000.

Two ways in, chosen by the environment:

* ``DATABASE_URL`` (``postgresql://user:pass@host:port/db``, optional ``?sslmode=require|verify-full``
  and ``?host=/socket/dir`` for a Unix socket) wins when set: local runs, tests, ``sam local invoke``.
* ``DB_HOST``/``DB_PORT``/``DB_NAME``/``DB_USER``: the RDS Proxy endpoint in AWS. The password is an
  IAM auth token signed locally by boto3 (valid 15 minutes: enough to open a connection, not to keep
  one), and TLS verifies the proxy's certificate against the default trust store, where the Amazon
  roots that RDS Proxy certificates chain to already live, so no CA bundle is downloaded.

:class:`ConnectionProvider` keeps one connection per process, reused across invocations, and opens a
new one transparently when the old one has died.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native

from telemetry_adapter.config import ConfigurationError

# Socket timeout for connecting and for every statement: a hung database costs at most this long
# (a claim of 10,000 rows takes well under a second), never the whole invocation. No server-side
# SET statement_timeout: session state would pin the connection in RDS Proxy.
_SOCKET_TIMEOUT_SECONDS = 10
_DEFAULT_PORT = 5432
# SQLSTATE classes that mean the session is gone: connection exceptions (08) and operator
# intervention (57P: admin shutdown, pg_terminate_backend, crash shutdown, cannot connect now).
_CONNECTION_SQLSTATES = ("08", "57P")


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

    def connect(self) -> pg8000.native.Connection:
        """Open a new connection (generating an IAM token first when configured)."""
        kwargs: dict[str, Any] = {
            "user": self.user,
            "database": self.database,
            "timeout": self.timeout_seconds,
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
        return pg8000.native.Connection(**kwargs)

    def _iam_token(self) -> str:
        import boto3  # local import: only the RDS Proxy path pays for the client

        client = boto3.client("rds", region_name=self.iam_region)
        token: str = client.generate_db_auth_token(
            DBHostname=self.host or "", Port=self.port, DBUsername=self.user, Region=self.iam_region
        )
        return token


class ConnectionProvider:
    """One connection per process, reused across invocations and replaced when it has died."""

    def __init__(self, connect: Callable[[], pg8000.native.Connection]) -> None:
        self._connect = connect
        self._connection: pg8000.native.Connection | None = None

    def get(self) -> pg8000.native.Connection:
        """The open connection, opening one if there is none."""
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def discard(self) -> None:
        """Forget the current connection (after an error that leaves it unusable)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it is already broken; closing is a courtesy
                connection.close()


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
