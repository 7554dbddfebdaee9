"""The embedded AWS endpoint: moto's threaded server on a free loopback port, made safe for concurrency.

moto keeps SQS queues and Kinesis shards in plain Python lists and dicts that its own comments call
"not safe for concurrency": a DeleteMessage racing a SendMessage can drop the new message, and two
PutRecords racing on one shard can give two records the same sequence number, so one overwrites the
other. Real SQS and Kinesis never do that, and a lost message here would look like a bug in the
adapter. So requests run one at a time per service. A long-poll ReceiveMessage cannot hold the lock
while it waits (nothing could be sent meanwhile), so it is served as short polls under the lock with
pauses outside it until a message arrives or the wait time is over, which is what a long poll is.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from local_stack.ports import port_taken

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_SHORT_POLL_PAUSE_SECONDS = 0.05
_RECEIVE_TARGET = "AmazonSQS.ReceiveMessage"


class SerializingMiddleware:
    """Runs the requests of one service (by ``X-Amz-Target`` prefix) one at a time."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        service = target.split(".", 1)[0] or str(environ.get("HTTP_HOST", ""))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if target == _RECEIVE_TARGET:
            status, headers, payload = self._long_poll(service, environ, body)
        else:
            status, headers, payload = self._locked_call(service, environ, body)
        start_response(status, headers)
        return [payload]

    def _lock(self, service: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(service, threading.Lock())

    def _locked_call(self, service: str, environ: dict[str, Any], body: bytes) -> tuple[str, list[Any], bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        request = dict(environ)
        request["wsgi.input"] = io.BytesIO(body)
        request["CONTENT_LENGTH"] = str(len(body))
        with self._lock(service):
            chunks = self._app(request, capture)
            try:
                payload = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        return captured["status"], captured["headers"], payload

    def _long_poll(self, service: str, environ: dict[str, Any], body: bytes) -> tuple[str, list[Any], bytes]:
        try:
            request = json.loads(body or b"{}")
            wait = float(request.get("WaitTimeSeconds") or 0)
        except (ValueError, TypeError, AttributeError):
            return self._locked_call(service, environ, body)
        request["WaitTimeSeconds"] = 0
        short = json.dumps(request).encode()
        ends = time.monotonic() + wait
        while True:
            status, headers, payload = self._locked_call(service, environ, short)
            if not status.startswith("200") or time.monotonic() >= ends or _has_messages(payload):
                return status, headers, payload
            time.sleep(_SHORT_POLL_PAUSE_SECONDS)


def _has_messages(payload: bytes) -> bool:
    try:
        return bool(json.loads(payload or b"{}").get("Messages"))
    except (ValueError, AttributeError):
        return True


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without the access log line per request (it would flood the terminal)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class LoopbackMotoServer(ThreadedMotoServer):
    """moto's threaded server on 127.0.0.1 (port 0 = a free port), quiet, with serialized services."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    def start(self) -> None:
        """Bind (raising ``ConfigurationError`` at once if the port is taken), serve on a thread, start empty:
        moto's backends are per process, so a previous run (or a test's ``mock_aws``) in this process
        may have left resources behind."""
        app = SerializingMiddleware(DomainDispatcherApplication(create_backend_app))
        try:
            self._server = make_server(self._ip_address, self._port, app, threaded=True, request_handler=_QuietHandler)
        except OSError as error:
            raise port_taken("the AWS endpoint", self._port, error) from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        self._server_ready_event.set()
        self.reset()

    def stop(self) -> None:
        """Stop serving and leave moto's per-process state empty."""
        self.reset()
        super().stop()

    def reset(self) -> None:
        """Drop every resource (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback URL we built
            pass

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"
