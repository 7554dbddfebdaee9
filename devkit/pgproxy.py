"""A loopback TCP proxy in front of PostgreSQL: it delays, counts, records or cuts what crosses the wire.

In AWS each SQL round trip crosses the network (Lambda to RDS Proxy to the database, about 1 ms in
one region); on loopback it costs a few microseconds. The proxy forwards client bytes at once and
holds every chunk the server sends for ``rtt`` after it arrived (a delay line, not a queue of
sleeps: bytes that arrive together leave together), so each request/response exchange costs one
RTT more, here as it would in AWS: the benchmark's modelled network. It counts those exchanges
(:attr:`LatencyProxy.round_trips`: the ledger's connection makes one per statement, pg8000's own
three), records what clients sent when asked to (``record=True``), cuts a connection in the
middle of an exchange, before the request reaches the server (:meth:`LatencyProxy.cut_next_request`)
or after the server answered it in full (:meth:`LatencyProxy.lose_next_answer`), and takes the
database off the network for a while (:meth:`LatencyProxy.refuse_connections`: every connection
dropped, every new one closed at once, as clients see a database or proxy outage): the tests' view
of the wire.

Bounded: at most ``max_connections`` clients, 127.0.0.1 only, three daemon threads per client,
everything closed by :meth:`LatencyProxy.stop`.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from telemetry_adapter.ledger.connection import DatabaseSettings

_CHUNK = 65_536
_ACCEPT_POLL_SECONDS = 0.2
_JOIN_SECONDS = 2.0
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"
"""ReadyForQuery's type byte and length; its last byte (the transaction status) follows."""


class LatencyProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to the server ``database_url`` names."""

    def __init__(
        self, database_url: str, rtt_seconds: float, *, max_connections: int = 32, record: bool = False
    ) -> None:
        self._database_url = database_url
        self._upstream = DatabaseSettings.from_url(database_url)
        self.rtt_seconds = rtt_seconds
        self._max_connections = max_connections
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_ACCEPT_POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.connections = 0
        self.round_trips = 0
        """Request/response exchanges delayed: answers that began after the client had sent something."""
        self.sent: bytearray | None = bytearray() if record else None
        """With ``record``: every byte clients sent, in order (for one client at a time)."""
        self.cuts = 0
        """Connections cut by :meth:`cut_next_request`."""
        self._cut = threading.Event()
        self._refusing = threading.Event()
        self.refused = 0
        """Connections closed on arrival while refusing."""
        self.answers_lost = 0
        """Connections cut by :meth:`lose_next_answer`."""
        self._lose_answer = threading.Event()
        self.trickle: tuple[int, float] | None = None
        """When set, ``(bytes, seconds)``: answers leave in slices of that many bytes, one every that many
        seconds, as from a degraded path; each read a client makes then ends quickly, the answer late."""

    @property
    def url(self) -> str:
        """``database_url`` pointed at the proxy (TCP on loopback, whatever the server's transport)."""
        parts = urlsplit(self._database_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))

    def start(self) -> None:
        """Start accepting clients."""
        self._spawn(self._accept_loop, "pgproxy-accept")

    def cut_next_request(self) -> None:
        """Cut the connection the next client bytes arrive on, instead of forwarding them: the client
        has sent its request and then finds the connection closed, as when a network path or a proxy
        drops in the middle of an exchange."""
        self._cut.set()

    def refuse_connections(self) -> None:
        """Drop every open connection and close each new one as it arrives, until
        :meth:`accept_connections`: the database is unreachable, but the port stays this proxy's."""
        self._refusing.set()
        self._close_open_sockets()

    def accept_connections(self) -> None:
        """End :meth:`refuse_connections`: new connections are forwarded again."""
        self._refusing.clear()

    @property
    def refusing(self) -> bool:
        """Whether connections are being refused."""
        return self._refusing.is_set()

    def _close_open_sockets(self) -> None:
        with self._lock:
            sockets, self._sockets = list(self._sockets), []
            self._threads = [thread for thread in self._threads if thread.is_alive()]
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def lose_next_answer(self) -> None:
        """Forward the next client request, let the server answer it in full (up to ReadyForQuery: the
        statement ran and, outside a transaction block, committed), then cut the connection instead of
        relaying that answer: the client finds its connection closed after its statement took effect,
        as when a network path drops while the answer is on its way."""
        self._lose_answer.set()

    def stop(self) -> None:
        """Close every socket and wait (bounded) for the threads to end."""
        self._stopped.set()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(_JOIN_SECONDS)

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _connect_upstream(self) -> socket.socket:
        settings = self._upstream
        if settings.unix_socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(settings.unix_socket)
            return sock
        sock = socket.create_connection((settings.host or "127.0.0.1", settings.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed by stop()
            if self._refusing.is_set():
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
                client.close()
                self.refused += 1
                continue
            if self.connections >= self._max_connections:
                client.close()
                continue
            self.connections += 1
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = self._connect_upstream()
            self._track(client)
            self._track(upstream)
            answers: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()
            asked = threading.Event()
            doomed = threading.Event()
            self._spawn(self._forward, "pgproxy-up", client, upstream, asked, doomed)
            self._spawn(self._hold, "pgproxy-hold", upstream, answers, asked, doomed, client)
            self._spawn(self._release, "pgproxy-down", answers, client)

    def _forward(
        self, source: socket.socket, target: socket.socket, asked: threading.Event, doomed: threading.Event
    ) -> None:
        """Client to server, at once (or the connection cut, when asked for)."""
        with contextlib.suppress(OSError):
            while chunk := source.recv(_CHUNK):
                if self._cut.is_set():
                    self._cut.clear()
                    with self._lock:
                        self.cuts += 1
                    source.shutdown(socket.SHUT_RDWR)
                    break
                if self._lose_answer.is_set():
                    self._lose_answer.clear()
                    doomed.set()  # this request goes through; its answer will not
                if self.sent is not None:
                    with self._lock:
                        self.sent.extend(chunk)
                asked.set()  # before sending: the answer may come back before sendall returns
                target.sendall(chunk)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _hold(
        self,
        source: socket.socket,
        answers: queue.SimpleQueue[tuple[float, bytes] | None],
        asked: threading.Event,
        doomed: threading.Event,
        client: socket.socket,
    ) -> None:
        """Server to the delay line, each chunk stamped with the time it may leave; a doomed answer is
        read to its ReadyForQuery and dropped, and the client's connection cut."""
        dropped = bytearray()
        with contextlib.suppress(OSError):
            while chunk := source.recv(_CHUNK):
                if doomed.is_set():
                    dropped.extend(chunk)
                    if dropped[-6:-1] == _READY_FOR_QUERY:
                        with self._lock:
                            self.answers_lost += 1
                        client.shutdown(socket.SHUT_RDWR)
                        source.shutdown(socket.SHUT_RDWR)
                        break
                    continue
                answers.put((time.monotonic() + self.rtt_seconds, chunk))
                if asked.is_set():
                    asked.clear()
                    with self._lock:
                        self.round_trips += 1
        answers.put(None)

    def _release(self, answers: queue.SimpleQueue[tuple[float, bytes] | None], target: socket.socket) -> None:
        """Delay line to the client, each chunk when its time has come."""
        while (item := answers.get()) is not None:
            due, chunk = item
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                self._send(target, chunk)
            except OSError:
                break
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _send(self, target: socket.socket, chunk: bytes) -> None:
        trickle = self.trickle
        if trickle is None:
            target.sendall(chunk)
            return
        size, pause = trickle
        for start in range(0, len(chunk), size):
            if self._stopped.is_set():
                raise OSError("proxy stopped")
            time.sleep(pause)
            target.sendall(chunk[start : start + size])


@contextlib.contextmanager
def latency_proxy(
    database_url: str, rtt_ms: float, *, record: bool = False, max_connections: int = 32
) -> Iterator[LatencyProxy]:
    """A started proxy for the duration of the block."""
    proxy = LatencyProxy(database_url, rtt_ms / 1000, record=record, max_connections=max_connections)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def frontend_messages(data: bytes | bytearray) -> list[tuple[bytes, bytes]]:
    """Split what a client sent after its start-up message (which has no type byte) into (type byte,
    body) messages: Parse is ``P``, Bind ``B``, a simple query ``Q``, and so on."""
    found, offset = [], 0
    while offset + 5 <= len(data):
        code, length = bytes(data[offset : offset + 1]), int.from_bytes(data[offset + 1 : offset + 5], "big")
        found.append((code, bytes(data[offset + 5 : offset + 1 + length])))
        offset += 1 + length
    return found
