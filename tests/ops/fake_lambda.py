"""A loopback stand-in for the Lambda Invoke API that runs the health function's real handler in process.

Lambda itself cannot run here (moto's Lambda needs Docker), so the tool's deployed path is checked
against this: boto3's own ``lambda.invoke`` request (``POST /2015-03-31/functions/<name>/invocations``),
answered as Lambda answers it: the handler's result as the payload, or ``X-Amz-Function-Error:
Unhandled`` with Lambda's error document when the handler raises, and ``ResourceNotFoundException``
for any other function name.
"""

from __future__ import annotations

import contextlib
import json
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from devkit.lambda_shapes import LambdaContext
from health import handler as health_handler
from health import operations
from health.wiring import default_dependencies


class FakeLambda:
    """Serves one function name; records each event it was invoked with."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.events: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else b"{}"
                fake.answer(self, payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-lambda", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        default_dependencies.cache_clear()  # a fresh execution environment, configured by this environment
        operations.default_lookup.cache_clear()
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._server.shutdown()
            self._server.server_close()
        self._thread.join(5)
        default_dependencies.cache_clear()
        operations.default_lookup.cache_clear()

    def answer(self, request: BaseHTTPRequestHandler, payload: bytes) -> None:
        name = unquote(request.path.split("/functions/", 1)[-1].split("/", 1)[0])
        if name != self.function_name:
            self._send(
                request,
                404,
                {"Type": "User", "Message": f"Function not found: {name}"},
                {"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
            return
        event = json.loads(payload or b"{}")
        self.events.append(event)
        try:
            result = health_handler.lambda_handler(event, LambdaContext(10_000, function_name=name))
        except Exception as error:
            failure = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_exception(error),
            }
            self._send(request, 200, failure, {"X-Amz-Function-Error": "Unhandled"})
            return
        self._send(request, 200, result, {})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, document: Any, headers: dict[str, str]) -> None:
        body = json.dumps(document).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)
