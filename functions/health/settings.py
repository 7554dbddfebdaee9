"""The health function's settings, read from the environment once per process.

The resource names are optional here: a check whose resource is not configured answers ``failing``
with reason ``not_configured`` (naming the variable), which is more useful from a health endpoint
than a crash. Only a malformed number is a :class:`ConfigurationError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from telemetry_adapter.config import ConfigurationError

URL_AUTH_TYPES = ("AWS_IAM", "NONE")
"""The Function URL auth types; the first is the default."""


@dataclass(frozen=True)
class HealthSettings:
    """What the health checks look at and how long each may take."""

    stream_name: str | None = None
    """``STREAM_NAME``: the Kinesis stream that must be ``ACTIVE``."""
    queue_url: str | None = None
    """``QUEUE_URL``: the submissions queue (depth, and age of its oldest message)."""
    dlq_url: str | None = None
    """``DLQ_URL``: the dead-letter queue; any message there degrades the service."""
    check_timeout_ms: int = 2_000
    """``HEALTH_CHECK_TIMEOUT_MS``: a check not done by then is ``failing`` (reason ``timeout``)."""
    heartbeat_max_age_seconds: int = 900
    """``HEARTBEAT_MAX_AGE_SECONDS``: no processor batch for longer than this degrades the service."""
    public_url: bool = False
    """``HEALTH_URL_AUTH`` is ``NONE``: anyone may call the URL, so it answers statuses only
    (:mod:`health.public`)."""

    @property
    def check_timeout_seconds(self) -> float:
        """The per-check timeout in seconds."""
        return self.check_timeout_ms / 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HealthSettings:
        """Read the settings; raise ConfigurationError naming a malformed variable."""
        source = os.environ if env is None else env
        return cls(
            stream_name=_text(source, "STREAM_NAME"),
            queue_url=_text(source, "QUEUE_URL"),
            dlq_url=_text(source, "DLQ_URL"),
            check_timeout_ms=_int(source, "HEALTH_CHECK_TIMEOUT_MS", cls.check_timeout_ms, 50, 25_000),
            heartbeat_max_age_seconds=_int(
                source, "HEARTBEAT_MAX_AGE_SECONDS", cls.heartbeat_max_age_seconds, 1, 7 * 86_400
            ),
            public_url=_url_auth(source) == "NONE",
        )


def _text(source: Mapping[str, str], name: str) -> str | None:
    return source.get(name, "").strip() or None


def _int(source: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = source.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigurationError(f"{name} must be an integer from {low} to {high}, got {text!r}")
    return int(text)


def _url_auth(source: Mapping[str, str]) -> str:
    """``HEALTH_URL_AUTH``: the Function URL's auth type, as the stack sets it (``AWS_IAM`` when unset)."""
    value = source.get("HEALTH_URL_AUTH", "").strip() or URL_AUTH_TYPES[0]
    if value not in URL_AUTH_TYPES:
        raise ConfigurationError(f"HEALTH_URL_AUTH must be one of {', '.join(URL_AUTH_TYPES)}, got {value!r}")
    return value
