"""TLS with certificate verification on the RDS Proxy connection.

``DatabaseSettings.from_env`` with the ``DB_*`` variables must ask for ``verify-full``; ``connect``
must hand pg8000 a context that checks the certificate chain and the host name; against a server
with an untrusted certificate the connection must fail before anything secret is sent; and against a
trusted one the ledger's connection works over TLS as it does in the clear.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pg8000.native
import pytest

from devkit.pgproxy import latency_proxy
from telemetry_adapter.ledger import connection as connection_module
from telemetry_adapter.ledger.connection import DatabaseSettings
from tests.security.tls_server import (
    SSL_REQUEST,
    FakeTlsPostgres,
    TlsFrontDoor,
    authority_and_server_certificate,
    self_signed_certificate,
)

RDS_ENV = {
    "DB_HOST": "proxy.proxy-abc.us-east-1.rds.amazonaws.com",
    "DB_PORT": "5432",
    "DB_NAME": "ledger",
    "DB_USER": "app",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[FakeTlsPostgres]:
    server = FakeTlsPostgres(*self_signed_certificate(tmp_path))
    yield server
    server.close()


def test_the_rds_variables_select_iam_auth_and_verify_full() -> None:
    settings = DatabaseSettings.from_env(RDS_ENV)
    assert settings.tls == "verify-full"
    assert settings.iam_region == "us-east-1"
    assert settings.password is None  # the token is made at connect time, never stored
    assert "password" not in repr(DatabaseSettings.from_url("postgresql://u:hunter2@h/db"))


def test_connect_passes_a_verifying_context_and_a_fresh_iam_token(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def record(**kwargs: Any) -> None:
        seen.update(kwargs)

    # The driver and the network are the boundary: there is no RDS Proxy here (and its name must not be
    # looked up), so hand the connect a local socket and capture what the driver would be given.
    ours, theirs = socket.socketpair()
    opened: list[tuple[str | None, int]] = []

    def open_socket(unix_socket: str | None, host: str | None, port: int, timeout_seconds: float) -> socket.socket:
        opened.append((host, port))
        return ours

    monkeypatch.setattr(connection_module, "_open_socket", open_socket)
    monkeypatch.setattr(connection_module, "OneTripConnection", record)
    try:
        DatabaseSettings.from_env(RDS_ENV).connect()
    finally:
        ours.close()
        theirs.close()
    assert opened == [(RDS_ENV["DB_HOST"], 5432)]
    assert seen["sock"] is ours
    context = seen["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"] >= 0  # default trust store
    assert seen["host"] == RDS_ENV["DB_HOST"]
    assert seen["port"] == 5432
    assert seen["password"].startswith(f"{RDS_ENV['DB_HOST']}:5432/?Action=connect")
    assert "X-Amz-Signature=" in seen["password"]


def test_verify_full_refuses_an_untrusted_certificate_before_sending_anything(tls_server: FakeTlsPostgres) -> None:
    settings = DatabaseSettings(
        host="localhost", port=tls_server.port, database="ledger", user="app", password="never-sent", tls="verify-full"
    )
    with pytest.raises((pg8000.native.InterfaceError, ssl.SSLError)) as raised:
        settings.connect()
    assert "CERTIFICATE_VERIFY_FAILED" in repr(raised.value) + repr(raised.value.__cause__)
    assert tls_server.clear_bytes == [SSL_REQUEST]  # only the SSLRequest went out in the clear
    assert tls_server.handshakes == 0


def test_the_iam_path_refuses_an_untrusted_certificate(tls_server: FakeTlsPostgres) -> None:
    settings = DatabaseSettings.from_env({**RDS_ENV, "DB_HOST": "localhost", "DB_PORT": str(tls_server.port)})
    with pytest.raises((pg8000.native.InterfaceError, ssl.SSLError)):
        settings.connect()
    assert tls_server.clear_bytes == [SSL_REQUEST]
    assert tls_server.handshakes == 0


def test_verify_full_against_a_trusted_server_sends_each_statement_in_one_trip_over_tls(
    tmp_path: Path, clean_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority, certificate, key = authority_and_server_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(authority))  # the default trust store is this authority alone
    with latency_proxy(clean_database, 0.0) as proxy, TlsFrontDoor(certificate, key, ("127.0.0.1", proxy.port)) as door:
        plain = DatabaseSettings.from_url(proxy.url)
        settings = dataclasses.replace(plain, host="localhost", port=door.port, tls="verify-full")
        connection = settings.connect()
        try:
            secure = connection._usock
            assert isinstance(secure, ssl.SSLSocket)
            peer = secure.getpeercert()
            assert peer is not None  # verified: an unverified peer's certificate is not decoded
            assert peer["subjectAltName"] == (("DNS", "localhost"),)
            assert secure.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # set through the TLS socket
            before = proxy.round_trips
            rows = connection.run("SELECT CAST(:n AS int) + 1, CAST(:text AS text)", n=41, text="über ✓")
            assert proxy.round_trips - before == 1
            assert rows == [[42, "über ✓"]]
        finally:
            connection.close()
    assert door.handshakes == 1


def test_the_same_server_passes_without_verification_so_the_refusal_above_is_verification(
    tls_server: FakeTlsPostgres,
) -> None:
    settings = DatabaseSettings(
        host="localhost", port=tls_server.port, database="ledger", user="app", password="x", tls="require"
    )
    with pytest.raises(pg8000.native.InterfaceError):  # the fake closes after the handshake
        settings.connect()
    assert tls_server.handshakes == 1


def test_a_url_asking_for_verify_full_gets_it_and_prefer_is_at_least_encrypted() -> None:
    assert DatabaseSettings.from_url("postgresql://u@h/db?sslmode=verify-full").tls == "verify-full"
    assert DatabaseSettings.from_url("postgresql://u@h/db?sslmode=verify-ca").tls == "verify-full"
    assert DatabaseSettings.from_url("postgresql://u@h/db?sslmode=prefer").tls == "require"


def test_the_connect_shares_its_timeout_among_the_hosts_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name with two unreachable addresses: the connect gives them one timeout between them (on a
    virtual clock), not one each as ``socket.create_connection`` does, so a reconnect stays within its
    allowance whatever the name resolves to."""
    now = [0.0]
    given: list[float] = []

    class BlackHole:
        """A socket whose connect waits out its whole timeout, as a dropped SYN does."""

        def __init__(self, *args: Any) -> None:
            self.timeout = 0.0

        def settimeout(self, seconds: float) -> None:
            self.timeout = seconds

        def connect(self, address: Any) -> None:
            given.append(self.timeout)
            now[0] += self.timeout
            raise TimeoutError("timed out")

        def close(self) -> None:
            pass

    addresses = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 5432)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", 5432)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: addresses)
    monkeypatch.setattr(socket, "socket", BlackHole)
    with pytest.raises(pg8000.native.InterfaceError, match="cannot connect"):
        connection_module._open_socket(None, "proxy.example", 5432, 1.0, clock=lambda: now[0])
    assert sum(given) <= 1.0
    assert given == [1.0]
