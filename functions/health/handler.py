"""Health endpoint behind a Lambda Function URL (payload format 2.0, IAM auth).

``GET /`` and ``GET /health`` run every check (:mod:`health.wiring`) concurrently, each within
``HEALTH_CHECK_TIMEOUT_MS``, and answer::

    {"status": "ok|degraded|failing", "checks": {name: {"status": ..., "latency_ms": ..., ...}}, "time": ...}

with HTTP 200 for ``ok`` and ``degraded`` and 503 for ``failing``. Any other path is a 404 and any
other method a 405 with an ``Allow`` header. The routes are two, so a small router here is clearer
than an event-handler framework, and costs nothing at import.

Invoked directly (not through the URL) with an event that names an ``operation``, the function answers
the operators' tool instead (:mod:`health.operations`). A URL without auth (``HEALTH_URL_AUTH=NONE``)
answers statuses only (:mod:`health.public`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from health import operations
from health.wiring import HealthDependencies, build_checks, default_dependencies
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.health_checks import HealthReport, Status, run_checks
from telemetry_adapter.observability import inject_lambda_context, logger, tracer

HEALTH_PATHS = frozenset({"/", "/health"})
_NOT_CONFIGURED = {"status": Status.FAILING.value, "checks": {}, "reason": "not_configured"}
ALLOWED_METHODS = ("GET",)


@inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point of the health function."""
    if operations.is_direct_invocation(event):
        return operations.answer(event, health=_default_health_body)
    return route(event) or _default_health_response()


def _default_dependencies() -> HealthDependencies | None:
    """The function's own dependencies, or None (logged) when it is misconfigured."""
    try:
        return default_dependencies()
    except ConfigurationError as error:
        logger.error("health function misconfigured", extra={"error": str(error)})
        return None


def _default_health_body() -> dict[str, Any]:
    """The health answer with the function's own dependencies, or ``failing`` when it is misconfigured."""
    dependencies = _default_dependencies()
    return health_body(dependencies) if dependencies else dict(_NOT_CONFIGURED)


def _default_health_response() -> dict[str, Any]:
    """The URL's answer with the function's own dependencies, or 503 when it is misconfigured."""
    dependencies = _default_dependencies()
    return health_response(dependencies) if dependencies else _http_answer(dict(_NOT_CONFIGURED))


def handle(
    event: Mapping[str, Any],
    dependencies: HealthDependencies,
    lookup: Callable[[], operations.SubmissionLookup] = operations.default_lookup,
) -> dict[str, Any]:
    """Answer one event with the given dependencies (the seam tests use), as ``lambda_handler`` does."""
    if operations.is_direct_invocation(event):
        return operations.answer(event, health=partial(health_body, dependencies), lookup=lookup)
    return route(event) or health_response(dependencies)


def route(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 404 or 405 answer for a request that is not ``GET`` on a health path; None for one that is."""
    http = event.get("requestContext", {}).get("http", {})
    method = str(http.get("method", "GET")).upper()
    path = str(event.get("rawPath") or http.get("path") or "/")
    if path != "/":
        path = path.rstrip("/") or "/"
    if path not in HEALTH_PATHS:
        return _response(404, {"message": "not found", "paths": sorted(HEALTH_PATHS)})
    if method not in ALLOWED_METHODS:
        return _response(
            405, {"message": "method not allowed", "allowed": list(ALLOWED_METHODS)}, allow=", ".join(ALLOWED_METHODS)
        )
    return None


def health_response(dependencies: HealthDependencies) -> dict[str, Any]:
    """Run the checks and answer 200 (ok, degraded) or 503 (failing); statuses only, reused for a few
    seconds, when the URL is public (:mod:`health.public`)."""
    if dependencies.public_answers is not None:
        return _http_answer(dependencies.public_answers.get(partial(health_body, dependencies)))
    return _http_answer(health_body(dependencies))


def _http_answer(body: dict[str, Any]) -> dict[str, Any]:
    return _response(503 if body["status"] == Status.FAILING.value else 200, body)


def health_body(dependencies: HealthDependencies) -> dict[str, Any]:
    """Run the checks: ``{"status", "checks", "time"}``."""
    report = run_checks(build_checks(dependencies), dependencies.settings.check_timeout_seconds)
    _log(report)
    return {**report.as_json(), "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}


def _log(report: HealthReport) -> None:
    unhealthy = {check.name: check.as_json() for check in report.checks if check.status is not Status.OK}
    if unhealthy:
        logger.warning("health check not ok", extra={"status": report.status.value, "checks": unhealthy})
    else:
        logger.info("health check ok")


def _response(status_code: int, body: Mapping[str, Any], *, allow: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json", "cache-control": "no-store"}
    if allow is not None:
        headers["allow"] = allow
    return {"statusCode": status_code, "headers": headers, "body": json.dumps(body, separators=(",", ":"))}
