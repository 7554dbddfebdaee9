"""A fake PostgreSQL front door on loopback that speaks just enough of the protocol to test TLS.

It answers the client's SSLRequest with ``S`` and then presents a self-signed certificate for
``localhost``, like a server whose certificate the client has no reason to trust. It records what it
received in the clear and whether the handshake completed, then closes: no authentication ever
happens, so a password or token could only leak through the clear-text bytes it records.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway key and self-signed certificate for ``localhost``; return (cert, key) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


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
