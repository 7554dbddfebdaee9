"""Deploy-time knobs: CDK context values, their defaults, and validation at synth time.

Every value can come from ``cdk.json`` (typed JSON) or from ``cdk deploy -c key=value`` (always a
string), so each parser accepts both. A bad value stops the synth with a :class:`ContextError` that
names the context key and says what is allowed, instead of a stack that deploys and then misbehaves
(for example a visibility timeout shorter than the function timeout, which makes SQS redeliver
messages that are still being processed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

# Context keys (documented in docs/configuration.md, CDK context values), with their defaults. ``None`` means "derived"
# or "not set".
DEFAULTS: dict[str, Any] = {
    "batchSize": 100,
    "maxBatchingWindowSeconds": 5,
    "maxConcurrency": 10,
    "functionTimeoutSeconds": 60,
    "functionMemoryMb": 512,
    "visibilityTimeoutSeconds": None,  # 6 x functionTimeoutSeconds
    "queueRetentionDays": 4,
    "maxReceiveCount": 5,
    "streamMode": "on-demand",
    "shardCount": None,  # required when streamMode is provisioned
    "alarmEmail": None,
    "healthUrlAuth": "AWS_IAM",
    "tracing": True,
    "lambdaInsights": True,
    "logLevel": "INFO",
    "timeBudgetMarginMs": 10_000,
    "ledgerRetentionDays": 14,
    "dbInstanceClass": "t4g.micro",
    "dbMultiAz": False,
    "dbAllocatedStorageGb": 20,
    "heartbeatMaxAgeSeconds": 900,
    "healthCheckTimeoutMs": 2_000,
    "alarmOldestMessageAgeSeconds": 900,
    "alarmRejectRatePercent": 5,
    "alarmErrorsThreshold": 1,
    "alarmThrottlesThreshold": 1,
    "alarmPutFailuresThreshold": 10,
    "alarmLedgerFailuresThreshold": 1,
}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_INSTANCE_CLASS = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ContextError(ValueError):
    """A CDK context value is invalid; the message names the key and what is allowed."""


@dataclass(frozen=True)
class DeploySettings:
    """Validated deploy-time settings (one attribute per context key, in snake case)."""

    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int
    function_timeout_seconds: int
    function_memory_mb: int
    visibility_timeout_seconds: int
    queue_retention_days: int
    max_receive_count: int
    stream_mode: str
    shard_count: int | None
    alarm_email: str | None
    health_url_auth: str
    tracing: bool
    lambda_insights: bool
    log_level: str
    time_budget_margin_ms: int
    ledger_retention_days: int
    db_instance_class: str
    db_multi_az: bool
    db_allocated_storage_gb: int
    heartbeat_max_age_seconds: int
    health_check_timeout_ms: int
    alarm_oldest_message_age_seconds: int
    alarm_reject_rate_percent: float
    alarm_errors_threshold: int
    alarm_throttles_threshold: int
    alarm_put_failures_threshold: int
    alarm_ledger_failures_threshold: int


def load_settings(context: Callable[[str], Any] | Mapping[str, Any]) -> DeploySettings:
    """Read and validate every context value; raise ContextError on the first bad one.

    ``context`` is a mapping (tests) or a lookup such as ``app.node.try_get_context``.
    """
    lookup = context.get if isinstance(context, Mapping) else context

    def raw(key: str) -> Any:
        value = lookup(key)
        return DEFAULTS[key] if value is None or value == "" else value

    timeout = _int(raw, "functionTimeoutSeconds", 1, 900)
    window = _int(raw, "maxBatchingWindowSeconds", 0, 300)
    batch_size = _int(raw, "batchSize", 1, 10_000)
    if batch_size > 10 and window < 1:
        raise ContextError("maxBatchingWindowSeconds must be at least 1 when batchSize is above 10 (an SQS rule)")
    visibility = (
        timeout * 6 if raw("visibilityTimeoutSeconds") is None else _int(raw, "visibilityTimeoutSeconds", 0, 43_200)
    )
    if visibility < 6 * timeout:
        raise ContextError(
            f"visibilityTimeoutSeconds ({visibility}) must be at least 6 x functionTimeoutSeconds "
            f"({6 * timeout}), as AWS advises for SQS event sources"
        )
    retention_queue = _int(raw, "queueRetentionDays", 1, 14)
    ledger_retention = _int(raw, "ledgerRetentionDays", 1, 3_650)
    if ledger_retention < retention_queue:
        raise ContextError(
            f"ledgerRetentionDays ({ledger_retention}) must cover queueRetentionDays ({retention_queue}), "
            "or a late redelivery is no longer recognised as a duplicate"
        )
    margin = _int(raw, "timeBudgetMarginMs", 0, 600_000)
    if margin >= timeout * 1000:
        raise ContextError(f"timeBudgetMarginMs ({margin}) must be below functionTimeoutSeconds x 1000")
    stream_mode = _choice(raw, "streamMode", ("on-demand", "provisioned"))
    shard_count = None if raw("shardCount") is None else _int(raw, "shardCount", 1, 10_000)
    if stream_mode == "provisioned" and shard_count is None:
        raise ContextError("shardCount is required when streamMode is provisioned")
    if stream_mode == "on-demand" and shard_count is not None:
        raise ContextError("shardCount applies only when streamMode is provisioned")
    email = raw("alarmEmail")
    if email is not None and not (isinstance(email, str) and _EMAIL.fullmatch(email)):
        raise ContextError(f"alarmEmail must be an e-mail address, got {email!r}")
    instance_class = raw("dbInstanceClass")
    if not (isinstance(instance_class, str) and _INSTANCE_CLASS.fullmatch(instance_class)):
        raise ContextError(f"dbInstanceClass must look like t4g.micro, got {instance_class!r}")
    settings = DeploySettings(
        batch_size=batch_size,
        max_batching_window_seconds=window,
        max_concurrency=_int(raw, "maxConcurrency", 2, 1_000),
        function_timeout_seconds=timeout,
        function_memory_mb=_int(raw, "functionMemoryMb", 128, 10_240),
        visibility_timeout_seconds=visibility,
        queue_retention_days=retention_queue,
        max_receive_count=_int(raw, "maxReceiveCount", 1, 1_000),
        stream_mode=stream_mode,
        shard_count=shard_count,
        alarm_email=email,
        health_url_auth=_choice(raw, "healthUrlAuth", ("AWS_IAM", "NONE")),
        tracing=_bool(raw, "tracing"),
        lambda_insights=_bool(raw, "lambdaInsights"),
        log_level=_choice(raw, "logLevel", _LOG_LEVELS),
        time_budget_margin_ms=margin,
        ledger_retention_days=ledger_retention,
        db_instance_class=instance_class,
        db_multi_az=_bool(raw, "dbMultiAz"),
        db_allocated_storage_gb=_int(raw, "dbAllocatedStorageGb", 20, 65_536),
        heartbeat_max_age_seconds=_int(raw, "heartbeatMaxAgeSeconds", 60, 86_400),
        health_check_timeout_ms=_int(raw, "healthCheckTimeoutMs", 100, 10_000),
        alarm_oldest_message_age_seconds=_int(raw, "alarmOldestMessageAgeSeconds", 60, 1_209_600),
        alarm_reject_rate_percent=_number(raw, "alarmRejectRatePercent", 0.0, 100.0),
        alarm_errors_threshold=_int(raw, "alarmErrorsThreshold", 1, 1_000_000),
        alarm_throttles_threshold=_int(raw, "alarmThrottlesThreshold", 1, 1_000_000),
        alarm_put_failures_threshold=_int(raw, "alarmPutFailuresThreshold", 1, 1_000_000),
        alarm_ledger_failures_threshold=_int(raw, "alarmLedgerFailuresThreshold", 1, 1_000_000),
    )
    if len(fields(settings)) != len(DEFAULTS):  # every documented key has exactly one attribute
        raise AssertionError("DeploySettings and DEFAULTS are out of step")
    return settings


def _int(raw: Callable[[str], Any], key: str, low: int, high: int) -> int:
    value = raw(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ContextError(f"{key} must be an integer between {low} and {high}, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ContextError(f"{key} must be an integer between {low} and {high}, got {value!r}") from None
    if not low <= number <= high:
        raise ContextError(f"{key} must be an integer between {low} and {high}, got {number}")
    return number


def _number(raw: Callable[[str], Any], key: str, low: float, high: float) -> float:
    value = raw(key)
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high:  # NaN fails too
        raise ContextError(f"{key} must be a number between {low:g} and {high:g}, got {value!r}")
    return number


def _bool(raw: Callable[[str], Any], key: str) -> bool:
    value = raw(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ContextError(f"{key} must be true or false, got {value!r}")


def _choice(raw: Callable[[str], Any], key: str, allowed: tuple[str, ...]) -> str:
    value = raw(key)
    if value not in allowed:
        raise ContextError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)
