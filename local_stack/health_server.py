"""The health function served over HTTP on loopback, as a Lambda Function URL serves it.

Each request becomes a Function URL event (payload format 2.0) for ``health.handler.lambda_handler``;
its ``{"statusCode", "headers", "body"}`` answer becomes the HTTP response. A result without a
``statusCode`` is sent as a 200 JSON body, as Function URLs do. If the handler cannot be imported,
requests get a 503 saying so, and the rest of the run goes on.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devkit.lambda_shapes import LambdaContext
from local_stack.ports import port_taken

HANDLER_MODULE = "health.handler"
_CONTEXT_TIMEOUT_MS = 10_000


def function_url_event(
    method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
) -> dict[str, Any]:
    """A Function URL (payload format 2.0) event for one HTTP request."""
    parts = urlsplit(target)
    now = time.time()
    lowered = {name.lower(): value for name, value in headers.items()}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lowered,
        "queryStringParameters": dict(parse_qsl(parts.query)) or None,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


def invoke_health(event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Call the health handler; map its answer to status, headers and body."""
    try:
        module = importlib.import_module(HANDLER_MODULE)
    except ImportError:
        return _json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unavailable", "reason": "no health handler"})
    result = module.lambda_handler(event, LambdaContext(_CONTEXT_TIMEOUT_MS, function_name="telemetry-adapter-health"))
    if not isinstance(result, dict) or "statusCode" not in result:
        return _json(HTTPStatus.OK, result)
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = {str(name): str(value) for name, value in (result.get("headers") or {}).items()}
    return int(result["statusCode"]), headers, payload


def _cold_start() -> None:
    """Forget what the health function built for an earlier run in this process.

    Like any Lambda function it builds its clients once per execution environment (a cached
    ``default_dependencies``); a new run has new endpoints, so it starts as a new environment would.
    """
    try:
        module = importlib.import_module(HANDLER_MODULE)
    except ImportError:
        return
    cached = getattr(module, "default_dependencies", None)
    clear = getattr(cached, "cache_clear", None)
    if callable(clear):
        clear()


def _json(status: int, document: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(document).encode()


class _FunctionUrlHandler(BaseHTTPRequestHandler):
    server_version = "local-function-url"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        event = function_url_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        try:
            status, headers, payload = invoke_health(event)
        except Exception as error:  # the handler crashed: Function URLs answer 502
            status, headers, payload = _json(HTTPStatus.BAD_GATEWAY, {"message": type(error).__name__})
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class HealthServer:
    """The HTTP server on 127.0.0.1 (port 0: any free port), on its own thread."""

    def __init__(self, port: int) -> None:
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", port), _FunctionUrlHandler)
        except OSError as error:
            raise port_taken("the health endpoint", port, error) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/health``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/health"

    def start(self) -> None:
        """Start serving, as a fresh execution environment of the function."""
        _cold_start()
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        with contextlib.suppress(Exception):
            self._server.shutdown()
            self._server.server_close()
        self._thread.join(5)
