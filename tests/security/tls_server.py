"""PostgreSQL front doors on loopback that speak just enough of the protocol to test TLS.

:class:`FakeTlsPostgres` answers the client's SSLRequest with ``S`` and then presents a self-signed
certificate for ``localhost``, like a server whose certificate the client has no reason to trust. It
records what it received in the clear and whether the handshake completed, then closes: no
authentication ever happens, so a password or token could only leak through the clear-text bytes it
records.

:class:`TlsFrontDoor` completes the handshake with a certificate a throwaway authority signed
(:func:`authority_and_server_certificate`) and forwards the decrypted stream to a real PostgreSQL:
a server with TLS on, for the whole ``verify-full`` path.
"""

from __future__ import annotations

import contextlib
import datetime
import select
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


_LOCALHOST = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
_CHUNK = 65_536
_POLL_SECONDS = 0.2
_SOCKET_TIMEOUT_SECONDS = 10


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway key and self-signed certificate for ``localhost``; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        _valid_for_an_hour(_LOCALHOST, _LOCALHOST, key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _written(directory / "server.crt", certificate), _written_key(directory / "server.key", key)


@dataclass
class FakeTlsPostgres:
    """Serves one connection at a time until closed; ``port`` is the loopback port it listens on."""

    certificate: Path
    key: Path
    port: int = 0
    clear_bytes: list[bytes] = field(default_factory=list)
    handshakes: int = 0
    handshake_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.certificate, self.key)
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-tls-postgres", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._socket.accept()
            except TimeoutError:
                continue
            with client:
                client.settimeout(5)
                self.clear_bytes.append(client.recv(8))
                client.sendall(b"S")
                try:
                    with self._context.wrap_socket(client, server_side=True):
                        self.handshakes += 1
                except (ssl.SSLError, OSError) as error:
                    self.handshake_errors.append(str(error))

    def close(self) -> None:
        """Stop serving (bounded: the accept loop wakes every 0.2 s)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


def authority_and_server_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway certificate authority and a certificate for ``localhost`` it signed; return the
    paths of (authority certificate, server certificate, server key). Trusting the authority (for
    instance through ``SSL_CERT_FILE``) makes the server pass ``verify-full``."""
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telemetry adapter test authority")])
    authority = (
        _valid_for_an_hour(authority_name, authority_name, authority_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(certificate_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(authority_key.public_key()), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        _valid_for_an_hour(_LOCALHOST, authority_name, server_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(certificate_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    return (
        _written(directory / "authority.crt", authority),
        _written(directory / "localhost.crt", server),
        _written_key(directory / "localhost.key", server_key),
    )


def _valid_for_an_hour(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    """A certificate for ``key``'s public half, valid from five minutes ago for an hour."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


def _written(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def _written_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _usage(*, certificate_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certificate_sign,
        crl_sign=certificate_sign,
        encipher_only=False,
        decipher_only=False,
    )


class TlsFrontDoor:
    """PostgreSQL with TLS on, on loopback: answers the SSLRequest with ``S``, completes the handshake
    with ``certificate``, then relays the decrypted stream to and from ``upstream`` (a real server's
    host and port), one client at a time, in one thread (an SSL socket is not shared between threads).
    A context manager; everything is closed on exit."""

    def __init__(self, certificate: Path, key: Path, upstream: tuple[str, int]) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate, key)
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tls-front-door", daemon=True)
        self._thread.start()

    def __enter__(self) -> TlsFrontDoor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(_SOCKET_TIMEOUT_SECONDS)
            if client.recv(8) != SSL_REQUEST:
                client.close()
                continue
            client.sendall(b"S")
            with (
                contextlib.suppress(OSError),
                self._context.wrap_socket(client, server_side=True) as secure,
                socket.create_connection(self._upstream, timeout=_SOCKET_TIMEOUT_SECONDS) as upstream,
            ):
                self.handshakes += 1
                self._relay(secure, upstream)

    def _relay(self, secure: ssl.SSLSocket, upstream: socket.socket) -> None:
        """Both directions until either side closes or the door is shut (bounded by the stop event)."""
        while not self._stop.is_set():
            readable, _, _ = select.select([secure, upstream], [], [], _POLL_SECONDS)
            if secure in readable:
                data = secure.recv(_CHUNK)
                while data and secure.pending():  # decrypted bytes select cannot see
                    data += secure.recv(secure.pending())
                if not data:
                    return
                upstream.sendall(data)
            if upstream in readable:
                data = upstream.recv(_CHUNK)
                if not data:
                    return
                secure.sendall(data)
