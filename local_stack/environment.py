"""The processor's environment inside ``make run``, applied to ``os.environ`` and restored afterwards.

The processor and the health handler read their configuration from the environment, exactly as in
Lambda, so the local stack configures them the same way instead of passing objects
around: the values here are what a deployed function would see, pointed at loopback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

from telemetry_adapter.config import PublishSettings
from telemetry_adapter.observability import DEFAULT_NAMESPACE

REGION = "us-east-1"
STREAM_NAME = "events"
QUEUE_NAME = "submissions"
DLQ_NAME = "submissions-dlq"
QUARANTINE_BUCKET_NAME = "quarantine"

# moto accepts any credentials; these keep boto3 from looking for real ones (and never find them).
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def local_environment(
    *,
    endpoint_url: str,
    database_url: str,
    queue_url: str,
    dlq_url: str,
    quarantine_bucket: str = QUARANTINE_BUCKET_NAME,
) -> dict[str, str]:
    """Variables for a run against the embedded services."""
    return {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "STREAM_NAME": STREAM_NAME,
        "QUEUE_URL": queue_url,
        "DLQ_URL": dlq_url,
        "QUARANTINE_BUCKET": quarantine_bucket,
        "DATABASE_URL": database_url,
        "POWERTOOLS_SERVICE_NAME": os.environ.get("POWERTOOLS_SERVICE_NAME", "telemetry-adapter"),
        "POWERTOOLS_METRICS_NAMESPACE": os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def budget_margin(function_timeout_ms: int) -> dict[str, str]:
    """``TIME_BUDGET_MARGIN_MS`` for a short local function timeout, unless the user set one.

    The processor's default margin (13 s, which its start-up check requires) suits a function timeout
    of twice that or more, so it is kept there; with the local default of 5 s it would leave no time to
    publish at all, so a quarter of the timeout is kept (the local poller runs such short invocations
    on purpose, outside the start-up check).
    """
    if os.environ.get("TIME_BUDGET_MARGIN_MS", "").strip():
        return {}
    long_enough = function_timeout_ms >= 2 * PublishSettings.safety_margin_ms
    margin = PublishSettings.safety_margin_ms if long_enough else function_timeout_ms // 4
    return {"TIME_BUDGET_MARGIN_MS": str(margin)}


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the block, then restore what was there before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def without_password(url: str) -> str:
    """``url`` with its password replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))
