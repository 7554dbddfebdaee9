"""Powertools Logger, Metrics and Tracer shared by the handlers (structured JSON logs, CloudWatch EMF, X-Ray).

Defaults keep the functions working when the Powertools variables are unset (local runs, tests);
the deployed stack sets ``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_METRICS_NAMESPACE``.

The tracer is lazy: constructing a Powertools ``Tracer`` imports the X-Ray SDK, which costs about
twice as much as ``import boto3`` and would blow the cold-start budget of a handler that does not
even trace. :class:`LazyTracer` applies the same rule as Powertools (on inside Lambda unless
``POWERTOOLS_TRACE_DISABLED`` is true; off locally, in SAM local and in tests) on the first
invocation, and only then builds the real ``Tracer``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "telemetry-adapter")
DEFAULT_NAMESPACE = "TelemetryAdapter"
"""The deployed stack's metrics namespace; local runs (``make run``, ``make invoke``) use it too."""
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)

MESSAGE_KEYS = ("message_id", "sender_id", "submission_id", "device_id")
"""The ids of a line about one message (see :mod:`telemetry_adapter.message_log`)."""


class _Formatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, where a line about one message has all of :data:`MESSAGE_KEYS`, ``null``
    for the ids that were not parsed. Powertools drops keys whose value is None; a query filtering on
    ``submission_id`` should meet a stable schema instead of a field that is sometimes missing."""

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]  # Powertools' LogRecord is a dict
        if "message_id" in log:
            log = {**log, **{key: log.get(key) for key in MESSAGE_KEYS}}
        return super().serialize(log)


logger = Logger(service=SERVICE, level=os.environ.get("LOG_LEVEL", "INFO"), logger_formatter=_Formatter())
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

Handler = Callable[[Any, Any], Any]


def inject_lambda_context(handler: Handler) -> Handler:
    """``logger.inject_lambda_context(clear_state=True)``, with the context's keys also held per thread.

    Powertools keeps the Lambda context's keys (``function_name``, ``function_request_id``, ...) in
    the logger's one formatter, shared by every thread. Lambda runs one invocation at a time per process,
    so that is enough there; the local stack runs the processor and the health function in one process,
    on different threads, and each invocation's keys would overwrite the other's in lines still to
    come. Pinned per thread as well (Powertools' thread-safe keys, which win over the shared ones), every
    line names the function and request that wrote it; Powertools clears them at the next invocation.
    """

    @logger.inject_lambda_context(clear_state=True)
    @functools.wraps(handler)
    def with_context(event: Any, context: Any) -> Any:
        logger.thread_safe_append_keys(
            function_name=context.function_name,
            function_memory_size=context.memory_limit_in_mb,
            function_arn=context.invoked_function_arn,
            function_request_id=context.aws_request_id,
        )
        return handler(event, context)

    return with_context


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Powertools' rule: trace inside Lambda (not SAM local or Chalice) unless explicitly disabled."""
    source = os.environ if env is None else env
    if resolve_truthy_env_var_choice(env=source.get("POWERTOOLS_TRACE_DISABLED", "false")):
        return False
    in_lambda = bool(source.get("LAMBDA_TASK_ROOT"))
    emulated = bool(source.get("AWS_SAM_LOCAL") or source.get("AWS_CHALICE_CLI_MODE"))
    return in_lambda and not emulated


class LazyTracer:
    """A Powertools Tracer built on the first traced invocation, and never when tracing is off."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._tracer: Tracer | None = None
        self._decided = False

    def get(self) -> Tracer | None:
        """The real tracer when tracing is enabled (building it on first use), else None."""
        with self._lock:
            if not self._decided:
                if tracing_enabled():
                    from aws_lambda_powertools import Tracer

                    self._tracer = Tracer(service=self._service)
                self._decided = True
            return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        """Like ``Tracer.capture_lambda_handler`` (without recording the response, which can be large)."""
        resolved: list[Handler] = []

        @functools.wraps(handler)
        def traced(event: Any, context: Any) -> Any:
            if not resolved:
                tracer = self.get()
                resolved.append(
                    handler if tracer is None else tracer.capture_lambda_handler(handler, capture_response=False)
                )
            return resolved[0](event, context)

        return traced


tracer = LazyTracer(SERVICE)
