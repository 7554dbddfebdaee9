"""Configuration read from the environment and validated once, at start-up.

A bad value fails fast with a :class:`ConfigurationError` that names the variable, so a broken
deployment shows up in the first invocation's log instead of as odd behaviour later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from telemetry_adapter.retry_schedule import MAX_BACKOFF_SECONDS
from telemetry_adapter.time_budget import (
    DEFAULT_STATEMENT_TIMEOUT_MS,
    MIN_STATEMENT_TIMEOUT_MS,
    margin_problem,
    minimum_margin_ms,
)

MIB = 1024 * 1024
KIB = 1024


class ConfigurationError(ValueError):
    """An environment variable is missing or holds an invalid value."""


@dataclass(frozen=True)
class Limits:
    """Validation limits. Defaults are safe for production; each is an environment variable."""

    max_body_bytes: int = MIB
    """Largest accepted submission, decoded (``MAX_BODY_BYTES``; 1 MiB is the SQS maximum)."""
    max_events: int = 10_000
    """Most events in one submission (``MAX_EVENTS_PER_SUBMISSION``)."""
    max_cmdl_chars: int = 32 * KIB
    """Longest ``cmdl`` in characters (``MAX_CMDL_CHARS``). With ``max_string_chars`` it must keep the
    largest possible record within Kinesis' 1 MiB (checked at start-up)."""
    max_string_chars: int = KIB
    """Longest other string field in characters (``MAX_STRING_CHARS``)."""
    max_depth: int = 32
    """Deepest JSON nesting accepted anywhere in the document (``MAX_NESTING_DEPTH``)."""


@dataclass(frozen=True)
class PublishSettings:
    """How the Kinesis publisher retries and how much of the invocation it may use."""

    safety_margin_ms: int = minimum_margin_ms(DEFAULT_STATEMENT_TIMEOUT_MS)
    """Stop starting Kinesis calls when less than this remains (``TIME_BUDGET_MARGIN_MS``). At start-up
    it must hold the longest Kinesis call, one ledger statement and the response
    (:func:`~telemetry_adapter.time_budget.minimum_margin_ms`); the default is exactly that."""
    default_budget_ms: int = 60_000
    """Budget when no Lambda context gives one, e.g. a local poller (``DEFAULT_BUDGET_MS``)."""
    max_concurrency: int = 4
    """PutRecords calls in flight at once, on disjoint submissions (``PUBLISH_CONCURRENCY``)."""
    max_attempts: int = 10
    """Attempts per record within one invocation before its submission is left for redelivery
    (``PUBLISH_MAX_ATTEMPTS``)."""
    backoff_base_ms: int = 50
    """First retry waits up to this long; each further failure doubles it (``BACKOFF_BASE_MS``)."""
    backoff_cap_ms: int = 2_000
    """Longest wait between retries of one record (``BACKOFF_CAP_MS``)."""
    lease_grace_seconds: int = 30
    """How long a claim outlives the invocation's own deadline (``LEASE_GRACE_SECONDS``)."""


@dataclass(frozen=True)
class RetrySettings:
    """How long a failed message waits before its next receive (:mod:`telemetry_adapter.backoff`).

    The same figures size the queue's ``maxReceiveCount`` at synth time (``retryBaseDelaySeconds`` and
    ``retryMaxDelaySeconds`` in the CDK context, passed here by the stack), so both must agree."""

    base_delay_seconds: int = 30
    """First backoff, doubling with each receive, with equal jitter (``RETRY_BASE_DELAY_SECONDS``)."""
    max_delay_seconds: int = 900
    """Longest backoff (``RETRY_MAX_DELAY_SECONDS``); at least the base."""


@dataclass(frozen=True)
class BreakerSettings:
    """When the processor stops calling a failing ledger or Kinesis (:mod:`telemetry_adapter.circuit_breaker`)."""

    failures_to_open: int = 5
    """Consecutive failed batches that open the breaker (``CIRCUIT_BREAKER_FAILURES``); 0: never opens."""
    cooldown_seconds: int = 30
    """How long it stays open before one batch probes the dependencies (``CIRCUIT_BREAKER_COOLDOWN_SECONDS``)."""


@dataclass(frozen=True)
class Settings:
    """Everything the processor reads from its environment."""

    stream_name: str
    limits: Limits = field(default_factory=Limits)
    publish: PublishSettings = field(default_factory=PublishSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    retention_days: int = 14
    """Ledger rows older than this are deleted by the clean-up (``LEDGER_RETENTION_DAYS``). It must
    cover a message's whole life: the queue's retention, then the dead-letter queue's (counted from
    the original send) and a redrive's fresh queue retention, so a late copy is still recognised as a
    duplicate. The CDK app checks this at synth time."""
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    """Longest wait for one ledger statement, connecting included (``LEDGER_STATEMENT_TIMEOUT_MS``);
    shorter when the invocation has less time left."""
    queue_url: str | None = None
    """``QUEUE_URL``: the queue this function reads, where a message the time budget stopped after
    progress is handed back as a fresh copy, and where each failed message gets its backoff visibility.
    Unset (a bare ``sam local invoke``): such a message is reported as a batch item failure instead, and
    failed messages come back after the queue's visibility timeout."""
    quarantine_bucket: str | None = None
    """``QUARANTINE_BUCKET``: the bucket that keeps every rejected message's body, which is acknowledged
    only once stored there. Unset or blank (a bare ``sam local invoke``): rejections are only counted and
    logged, and acknowledged at once."""
    max_idle_seconds: int = 300
    """A ledger connection idle longer than this is replaced before use (``LEDGER_MAX_IDLE_SECONDS``):
    Lambda's VPC network drops idle TCP flows after 350 seconds without telling either end, and RDS
    Proxy closes idle clients after its own timeout, so a connection kept across a long freeze would
    otherwise cost a whole statement timeout to find dead."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, check_time_budget: bool = True) -> Settings:
        """Read and validate the processor settings; raise ConfigurationError naming the variable.

        ``check_time_budget`` applies the safety-margin rule; only tools that run deliberately short
        invocations (the local runner, the chaos run) turn it off.
        """
        source = os.environ if env is None else env
        limits = Limits(
            max_body_bytes=env_int(source, "MAX_BODY_BYTES", Limits.max_body_bytes, 64, 16 * MIB),
            max_events=env_int(source, "MAX_EVENTS_PER_SUBMISSION", Limits.max_events, 1, 1_000_000),
            max_cmdl_chars=env_int(source, "MAX_CMDL_CHARS", Limits.max_cmdl_chars, 1, 250_000),
            max_string_chars=env_int(source, "MAX_STRING_CHARS", Limits.max_string_chars, 1, 200_000),
            max_depth=env_int(source, "MAX_NESTING_DEPTH", Limits.max_depth, 4, 512),
        )
        publish = PublishSettings(
            safety_margin_ms=env_int(source, "TIME_BUDGET_MARGIN_MS", PublishSettings.safety_margin_ms, 0, 600_000),
            default_budget_ms=env_int(source, "DEFAULT_BUDGET_MS", PublishSettings.default_budget_ms, 1, 900_000),
            max_concurrency=env_int(source, "PUBLISH_CONCURRENCY", PublishSettings.max_concurrency, 1, 64),
            max_attempts=env_int(source, "PUBLISH_MAX_ATTEMPTS", PublishSettings.max_attempts, 1, 1_000),
            backoff_base_ms=env_int(source, "BACKOFF_BASE_MS", PublishSettings.backoff_base_ms, 0, 60_000),
            backoff_cap_ms=env_int(source, "BACKOFF_CAP_MS", PublishSettings.backoff_cap_ms, 0, 300_000),
            lease_grace_seconds=env_int(source, "LEASE_GRACE_SECONDS", PublishSettings.lease_grace_seconds, 1, 3_600),
        )
        settings = cls(
            stream_name=_required(source, "STREAM_NAME"),
            limits=limits,
            publish=publish,
            retry=_retry_settings(source),
            breaker=BreakerSettings(
                failures_to_open=env_int(
                    source, "CIRCUIT_BREAKER_FAILURES", BreakerSettings.failures_to_open, 0, 1_000
                ),
                cooldown_seconds=env_int(
                    source, "CIRCUIT_BREAKER_COOLDOWN_SECONDS", BreakerSettings.cooldown_seconds, 1, 3_600
                ),
            ),
            retention_days=env_int(source, "LEDGER_RETENTION_DAYS", cls.retention_days, 1, 3_650),
            statement_timeout_ms=env_int(
                source, "LEDGER_STATEMENT_TIMEOUT_MS", cls.statement_timeout_ms, MIN_STATEMENT_TIMEOUT_MS, 60_000
            ),
            max_idle_seconds=env_int(source, "LEDGER_MAX_IDLE_SECONDS", cls.max_idle_seconds, 1, 3_600),
            queue_url=source.get("QUEUE_URL", "").strip() or None,
            quarantine_bucket=source.get("QUARANTINE_BUCKET", "").strip() or None,
        )
        _check_record_size(limits)
        if check_time_budget:
            problem = margin_problem(publish.safety_margin_ms, settings.statement_timeout_ms)
            if problem is not None:
                raise ConfigurationError(
                    f"TIME_BUDGET_MARGIN_MS is too small for LEDGER_STATEMENT_TIMEOUT_MS="
                    f"{settings.statement_timeout_ms}: {problem}"
                )
        return settings


def _retry_settings(source: Mapping[str, str]) -> RetrySettings:
    """The backoff's base and cap, within what SQS accepts as a visibility, the cap at least the base."""
    base = env_int(source, "RETRY_BASE_DELAY_SECONDS", RetrySettings.base_delay_seconds, 1, MAX_BACKOFF_SECONDS)
    cap = env_int(source, "RETRY_MAX_DELAY_SECONDS", RetrySettings.max_delay_seconds, 1, MAX_BACKOFF_SECONDS)
    if cap < base:
        raise ConfigurationError(f"RETRY_MAX_DELAY_SECONDS ({cap}) must be at least RETRY_BASE_DELAY_SECONDS ({base})")
    return RetrySettings(base, cap)


def _check_record_size(limits: Limits) -> None:
    """Refuse limits that admit a submission whose records Kinesis would refuse (over 1 MiB)."""
    from telemetry_adapter.records import MAX_RECORD_BYTES, worst_case_record_bytes

    size = worst_case_record_bytes(limits)
    if size > MAX_RECORD_BYTES:
        raise ConfigurationError(
            f"MAX_CMDL_CHARS and MAX_STRING_CHARS (4 bytes per character at most), bounded by MAX_BODY_BYTES, "
            f"allow a Kinesis record of {size} bytes, over the {MAX_RECORD_BYTES}-byte limit: lower one of them"
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is required and not set")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """The integer ``env[name]`` within ``[low, high]``, ``default`` when unset or blank."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, got {value}")
    return value
