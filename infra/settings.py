"""Deploy-time knobs: CDK context values, their defaults, and validation at synth time.

Every value can come from ``cdk.json`` (typed JSON) or from ``cdk deploy -c key=value`` (always a
string), so each parser accepts both. Values that belong to one stage live in ``cdk.json`` under
``context.stages.<stage>``, committed with the code, so every deploy of that stage gets them without
retyping (and a roll-back to an older release gets that release's): a value given on the command line
(or at the top level of ``cdk.json``'s context) wins over the stage's entry, which wins over the
default. Every entry may name only known keys, checked on any synth; the selected stage's values are
validated like the command line's. A bad value stops the synth with a :class:`ContextError` that
names the context key and says what is allowed, instead of a stack that deploys and then misbehaves
(for example a visibility timeout shorter than the function timeout, which makes SQS redeliver
messages that are still being processed).

Values that depend on each other are validated together, with the same arithmetic the functions use
(``telemetry_adapter.time_budget`` for the safety margin, ``telemetry_adapter.retry_schedule`` for
the receives an outage tolerance needs), so the stack and the code cannot disagree.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from telemetry_adapter.retry_schedule import (
    MAX_BACKOFF_SECONDS,
    MAX_VISIBILITY_SECONDS,
    guaranteed_retry_span_seconds,
    nominal_delay_seconds,
    receives_for_tolerance,
)
from telemetry_adapter.time_budget import DEFAULT_STATEMENT_TIMEOUT_MS, margin_problem

DEV_STAGE = "dev"
DLQ_RETENTION_DAYS = 14
"""How long the dead-letter queue keeps a message, counted from the message's ORIGINAL send."""
DLQ_NOTICE_DAYS = 2
"""The dead-letter age alarm fires when the oldest message has at least this long left to live."""
MAX_QUEUE_RETENTION_DAYS = DLQ_RETENTION_DAYS - DLQ_NOTICE_DAYS - 1
"""Longer main-queue retention would leave a dead-lettered message less than a day before its notice."""
DEFAULT_RUNBOOK_URL = "http://127.0.0.1:8000/runbook/"
"""Where ``mkdocs serve`` publishes the runbook page on the operator's own machine."""
SQS_MAX_RECEIVE_COUNT = 1_000
QUARANTINE_RETENTION_DAYS = 30
"""How long a rejected body is kept by default: long enough to notice a rejection wave (RejectRateHigh
pages within minutes), ship an adapter that understands the new input and replay, with a holiday in
between; short enough that telemetry nobody replays does not linger (it holds command lines and user
names, like the stream, whose records last a day)."""

STAGES_KEY = "stages"
"""The context value holding each stage's committed values: ``{"prod": {"dbMultiAz": true}}``."""

# Context keys (documented in docs/configuration.md), with their defaults. ``None`` means "derived from
# other values" or "not set"; the derivation is in load_settings.
DEFAULTS: dict[str, Any] = {
    "stage": DEV_STAGE,
    "local": False,
    "terminationProtection": None,  # true for every stage but dev
    "batchSize": 100,
    "maxBatchingWindowSeconds": 5,
    "maxConcurrency": 10,
    "functionTimeoutSeconds": 60,
    "functionMemoryMb": 512,
    "visibilityTimeoutSeconds": None,  # 6 x functionTimeoutSeconds
    "queueRetentionDays": 4,
    "outageToleranceHours": 6,
    "retryBaseDelaySeconds": 30,
    "retryMaxDelaySeconds": 900,
    "maxReceiveCount": None,  # the receives that cover outageToleranceHours
    "streamMode": "on-demand",
    "shardCount": None,  # required when streamMode is provisioned
    "streamRetentionHours": 24,
    "alarmEmail": None,
    "alarmsSubscribedExternally": False,
    "runbookUrl": DEFAULT_RUNBOOK_URL,
    "healthUrlAuth": "AWS_IAM",
    "tracing": True,
    "lambdaInsights": None,  # true unless local
    "logLevel": "INFO",
    "timeBudgetMarginMs": 15_000,
    "ledgerStatementTimeoutMs": DEFAULT_STATEMENT_TIMEOUT_MS,
    "ledgerRetentionDays": None,  # 14 + queueRetentionDays
    "quarantineRetentionDays": QUARANTINE_RETENTION_DAYS,
    "dbInstanceClass": "t4g.micro",
    "dbMultiAz": False,
    "dbAllocatedStorageGb": 20,
    "dbMaxAllocatedStorageGb": 100,
    "dbDeletionProtection": None,  # true for every stage but dev
    "heartbeatMaxAgeSeconds": 900,
    "healthCheckTimeoutMs": 2_000,
    "alarmOldestMessageAgeSeconds": 900,
    "alarmRejectRatePercent": 5,
    "alarmErrorsThreshold": 1,
    "alarmThrottlesThreshold": 1,
    "alarmPutFailuresThreshold": 10,
    "alarmLedgerFailuresThreshold": 1,
    "alarmFreeStorageGb": 2,
    "alarmCpuCreditBalance": 20,
    "account": None,  # with region: pin the stack to one environment
    "region": None,
}

_STAGE = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,19}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_INSTANCE_CLASS = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
_URL = re.compile(r"https?://[^\s#]+")
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d")
_LOG_LEVELS = ("DEBUG", "INFO")
_QUIETER_LOG_LEVELS = ("WARNING", "ERROR")


class ContextError(ValueError):
    """A CDK context value is invalid; the message names the key and what is allowed."""


@dataclass(frozen=True)
class DeploySettings:
    """Validated deploy-time settings (one attribute per context key, in snake case)."""

    stage: str
    local: bool
    termination_protection: bool
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int
    function_timeout_seconds: int
    function_memory_mb: int
    visibility_timeout_seconds: int
    queue_retention_days: int
    outage_tolerance_hours: int
    retry_base_delay_seconds: int
    retry_max_delay_seconds: int
    max_receive_count: int
    stream_mode: str
    shard_count: int | None
    stream_retention_hours: int
    alarm_email: str | None
    alarms_subscribed_externally: bool
    runbook_url: str
    health_url_auth: str
    tracing: bool
    lambda_insights: bool
    log_level: str
    time_budget_margin_ms: int
    ledger_statement_timeout_ms: int
    ledger_retention_days: int
    quarantine_retention_days: int
    db_instance_class: str
    db_multi_az: bool
    db_allocated_storage_gb: int
    db_max_allocated_storage_gb: int
    db_deletion_protection: bool
    heartbeat_max_age_seconds: int
    health_check_timeout_ms: int
    alarm_oldest_message_age_seconds: int
    alarm_reject_rate_percent: float
    alarm_errors_threshold: int
    alarm_throttles_threshold: int
    alarm_put_failures_threshold: int
    alarm_ledger_failures_threshold: int
    alarm_free_storage_gb: int
    alarm_cpu_credit_balance: int
    account: str | None
    region: str | None

    @property
    def is_dev(self) -> bool:
        """Whether this is the disposable development stage (no protections, no paging required)."""
        return self.stage == DEV_STAGE

    @property
    def dead_letter_age_alarm_days(self) -> int:
        """DLQ age (days since the move) at which its oldest message has DLQ_NOTICE_DAYS or more left.

        A DLQ message expires DLQ_RETENTION_DAYS after its original send, and it may have spent up to
        ``queue_retention_days`` in the main queue before it was moved.
        """
        return DLQ_RETENTION_DAYS - self.queue_retention_days - DLQ_NOTICE_DAYS

    @property
    def health_timeout_seconds(self) -> int:
        """The health function's timeout: the checks run concurrently, and two of them share the ledger
        connection one after the other, so two check timeouts, plus a few seconds to open that
        connection (IAM token, TLS) on a cold start."""
        return math.ceil(2 * self.health_check_timeout_ms / 1000) + 5

    @property
    def application_log_filter(self) -> str:
        """Lambda's application log filter: ``DEBUG`` with logLevel DEBUG, otherwise ``INFO``.

        Never above INFO: Powertools prints its EMF metric documents without a ``level`` key, which
        Lambda files as INFO, so a WARN filter would drop every custom metric.
        """
        return "DEBUG" if self.log_level == "DEBUG" else "INFO"

    @property
    def proxy_borrow_timeout_seconds(self) -> int:
        """RDS Proxy's connection borrow timeout, kept below the client's statement timeout, so a
        saturated pool fails the statement in time rather than the invocation."""
        return max(1, math.ceil(self.ledger_statement_timeout_ms / 1000) - 1)


def load_settings(context: Callable[[str], Any] | Mapping[str, Any]) -> DeploySettings:
    """Read and validate every context value; raise ContextError on the first bad one.

    ``context`` is a mapping (tests) or a lookup such as ``app.node.try_get_context``.
    """
    lookup = context.get if isinstance(context, Mapping) else context
    stages = _stage_entries(lookup(STAGES_KEY))
    committed = stages.get(lookup("stage") or DEFAULTS["stage"], {})

    def raw(key: str) -> Any:
        value = lookup(key)
        if value is None or value == "":
            value = committed.get(key)
        return DEFAULTS[key] if value is None or value == "" else value

    def given(key: str) -> bool:
        return raw(key) is not None

    stage = raw("stage")
    if not (isinstance(stage, str) and _STAGE.fullmatch(stage)):
        raise ContextError(
            f"stage must be 1 to 20 lower-case letters, digits and single hyphens, starting with a letter "
            f"(it becomes part of every resource name), got {stage!r}"
        )
    is_dev = stage == DEV_STAGE
    local = _bool(raw, "local")
    insights = (not local) if not given("lambdaInsights") else _bool(raw, "lambdaInsights")
    if local and insights:
        raise ContextError("lambdaInsights must be false with local=true (sam local cannot fetch the layer)")

    timeout = _int(raw, "functionTimeoutSeconds", 1, 900)
    window = _int(raw, "maxBatchingWindowSeconds", 0, 300)
    batch_size = _int(raw, "batchSize", 1, 10_000)
    if batch_size > 10 and window < 1:
        raise ContextError("maxBatchingWindowSeconds must be at least 1 when batchSize is above 10 (an SQS rule)")
    visibility = (
        timeout * 6 if not given("visibilityTimeoutSeconds") else _int(raw, "visibilityTimeoutSeconds", 0, 43_200)
    )
    if visibility < 6 * timeout:
        raise ContextError(
            f"visibilityTimeoutSeconds ({visibility}) must be at least 6 x functionTimeoutSeconds "
            f"({6 * timeout}), as AWS advises for SQS event sources"
        )

    statement_timeout = _int(raw, "ledgerStatementTimeoutMs", 2_000, 60_000)
    margin = _int(raw, "timeBudgetMarginMs", 0, 600_000)
    problem = margin_problem(margin, statement_timeout, timeout * 1000)
    if problem:
        raise ContextError(f"timeBudgetMarginMs: {problem} (ledgerStatementTimeoutMs, functionTimeoutSeconds)")

    queue_retention = _int(raw, "queueRetentionDays", 1, MAX_QUEUE_RETENTION_DAYS)
    receives, tolerance_hours, base, cap = _receives(
        raw, given, queue_retention, _Receive(window + timeout, visibility)
    )
    ledger_retention = _ledger_retention(raw, given, queue_retention)

    stream_mode = _choice(raw, "streamMode", ("on-demand", "provisioned"))
    shard_count = None if not given("shardCount") else _int(raw, "shardCount", 1, 10_000)
    if stream_mode == "provisioned" and shard_count is None:
        raise ContextError("shardCount is required when streamMode is provisioned")
    if stream_mode == "on-demand" and shard_count is not None:
        raise ContextError("shardCount applies only when streamMode is provisioned")

    email = raw("alarmEmail")
    if email is not None and not (isinstance(email, str) and _EMAIL.fullmatch(email)):
        raise ContextError(f"alarmEmail must be an e-mail address, got {email!r}")
    external = _bool(raw, "alarmsSubscribedExternally")
    if not is_dev and email is None and not external:
        raise ContextError(
            f"stage {stage!r} needs someone to page: set alarmEmail, or alarmsSubscribedExternally=true when "
            "the alarm topic (stack output AlarmTopicArn) is subscribed outside this stack, in cdk.json "
            f"(context.stages.{stage}) or with -c"
        )
    runbook = raw("runbookUrl")
    if not (isinstance(runbook, str) and _URL.fullmatch(runbook)):
        raise ContextError(f"runbookUrl must be an http(s) URL without a #fragment, got {runbook!r}")
    if runbook == DEFAULT_RUNBOOK_URL and not is_dev:
        raise ContextError(
            f"stage {stage!r} needs runbookUrl: every alarm's description links to the runbook, and the default "
            f"({DEFAULT_RUNBOOK_URL}) is the docs served on the deployer's own machine. Set it to where your team "
            f"publishes the docs, in cdk.json (context.stages.{stage}.runbookUrl) or with -c runbookUrl=..."
        )

    instance_class = raw("dbInstanceClass")
    if not (isinstance(instance_class, str) and _INSTANCE_CLASS.fullmatch(instance_class)):
        raise ContextError(f"dbInstanceClass must look like t4g.micro, got {instance_class!r}")
    storage = _int(raw, "dbAllocatedStorageGb", 20, 65_536)
    max_storage = _int(raw, "dbMaxAllocatedStorageGb", 20, 65_536)
    if max_storage < math.ceil(storage * 1.1):
        raise ContextError(
            f"dbMaxAllocatedStorageGb ({max_storage}) must be at least 10% above dbAllocatedStorageGb "
            f"({storage}), or storage autoscaling cannot grow"
        )
    free_storage = _int(raw, "alarmFreeStorageGb", 1, 65_536)
    if free_storage >= storage:
        raise ContextError(f"alarmFreeStorageGb ({free_storage}) must be below dbAllocatedStorageGb ({storage})")

    account, region = raw("account"), raw("region")
    if (account is None) != (region is None):
        raise ContextError("set both account and region context values, or neither")
    if account is not None and not _ACCOUNT.fullmatch(str(account)):
        raise ContextError(f"account must be a 12-digit AWS account id, got {account!r}")
    if region is not None and not _REGION.fullmatch(str(region)):
        raise ContextError(f"region must be an AWS region name such as eu-west-1, got {region!r}")

    settings = DeploySettings(
        stage=stage,
        local=local,
        termination_protection=(not is_dev)
        if not given("terminationProtection")
        else _bool(raw, "terminationProtection"),
        batch_size=batch_size,
        max_batching_window_seconds=window,
        max_concurrency=_int(raw, "maxConcurrency", 2, 1_000),
        function_timeout_seconds=timeout,
        function_memory_mb=_int(raw, "functionMemoryMb", 128, 10_240),
        visibility_timeout_seconds=visibility,
        queue_retention_days=queue_retention,
        outage_tolerance_hours=tolerance_hours,
        retry_base_delay_seconds=base,
        retry_max_delay_seconds=cap,
        max_receive_count=receives,
        stream_mode=stream_mode,
        shard_count=shard_count,
        stream_retention_hours=_int(raw, "streamRetentionHours", 24, 8_760),
        alarm_email=email,
        alarms_subscribed_externally=external,
        runbook_url=runbook,
        health_url_auth=_choice(raw, "healthUrlAuth", ("AWS_IAM", "NONE")),
        tracing=_bool(raw, "tracing"),
        lambda_insights=insights,
        log_level=_log_level(raw),
        time_budget_margin_ms=margin,
        ledger_statement_timeout_ms=statement_timeout,
        ledger_retention_days=ledger_retention,
        quarantine_retention_days=_int(raw, "quarantineRetentionDays", 1, 3_650),
        db_instance_class=instance_class,
        db_multi_az=_bool(raw, "dbMultiAz"),
        db_allocated_storage_gb=storage,
        db_max_allocated_storage_gb=max_storage,
        db_deletion_protection=(not is_dev)
        if not given("dbDeletionProtection")
        else _bool(raw, "dbDeletionProtection"),
        heartbeat_max_age_seconds=_int(raw, "heartbeatMaxAgeSeconds", 60, 86_400),
        health_check_timeout_ms=_int(raw, "healthCheckTimeoutMs", 100, 10_000),
        alarm_oldest_message_age_seconds=_int(raw, "alarmOldestMessageAgeSeconds", 60, 1_209_600),
        alarm_reject_rate_percent=_number(raw, "alarmRejectRatePercent", 0.0, 100.0),
        alarm_errors_threshold=_int(raw, "alarmErrorsThreshold", 1, 1_000_000),
        alarm_throttles_threshold=_int(raw, "alarmThrottlesThreshold", 1, 1_000_000),
        alarm_put_failures_threshold=_int(raw, "alarmPutFailuresThreshold", 1, 1_000_000),
        alarm_ledger_failures_threshold=_int(raw, "alarmLedgerFailuresThreshold", 1, 1_000_000),
        alarm_free_storage_gb=free_storage,
        alarm_cpu_credit_balance=_int(raw, "alarmCpuCreditBalance", 1, 10_000),
        account=None if account is None else str(account),
        region=None if region is None else str(region),
    )
    if len(fields(settings)) != len(DEFAULTS):  # every documented key has exactly one attribute
        raise AssertionError("DeploySettings and DEFAULTS are out of step")
    return settings


def _stage_entries(value: Any) -> dict[str, dict[str, Any]]:
    """``stages``, checked: stage names to objects that name only known context keys (not ``stage``).

    Every entry is checked on any synth, so a typo in one stage's entry fails the next synth of any
    stage, not the deploy that would have silently ignored it.
    """
    if value is None or value == "":
        return {}
    if isinstance(value, str):  # -c stages='{...}'
        try:
            value = json.loads(value)
        except ValueError:
            raise ContextError(f"{STAGES_KEY} must be an object of stage names, got {value!r}") from None
    if not isinstance(value, Mapping):
        raise ContextError(f"{STAGES_KEY} must be an object of stage names to objects of context values, got {value!r}")
    known = sorted(set(DEFAULTS) - {"stage"})
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in value.items():
        if not (isinstance(name, str) and _STAGE.fullmatch(name)):
            raise ContextError(f"{STAGES_KEY}: {name!r} is not a stage name (see the context value stage)")
        if not isinstance(entry, Mapping):
            raise ContextError(f"{STAGES_KEY}.{name} must be an object of context values, got {entry!r}")
        for key in entry:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ContextError(f"{STAGES_KEY}.{name}: unknown context key {key!r}{hint}")
        entries[name] = dict(entry)
    return entries


@dataclass(frozen=True)
class _Receive:
    """What one receive of a failing message can cost beyond its backoff."""

    in_flight_seconds: int
    """The batching window and the invocation: the backoff is set at their end."""
    visibility_seconds: int
    """The queue's visibility timeout: how long it stays away when no backoff is set, and how late a
    throttled invocation may still start (the event source mapping retries it until then)."""

    def longest(self, delay_seconds: int) -> int:
        """The longest a receive followed by ``delay_seconds`` of backoff keeps the message away."""
        return max(self.in_flight_seconds + delay_seconds, self.visibility_seconds)


def _receives(
    raw: Callable[[str], Any], given: Callable[[str], bool], queue_retention_days: int, receive: _Receive
) -> tuple[int, int, int, int]:
    """``maxReceiveCount`` (derived or checked) and the retry figures it comes from.

    A message that keeps failing for a transient reason waits ``retry_schedule``'s growing delays
    between receives; its last receive must come after the outage tolerance has passed (so an outage
    that long ends before its last try), and it must reach the DLQ before the main queue's retention
    deletes it.
    """
    tolerance_hours = _int(raw, "outageToleranceHours", 1, 168)
    base = _int(raw, "retryBaseDelaySeconds", 1, MAX_BACKOFF_SECONDS)
    cap = _int(raw, "retryMaxDelaySeconds", 1, MAX_BACKOFF_SECONDS)
    if cap < base:
        raise ContextError(f"retryMaxDelaySeconds ({cap}) must be at least retryBaseDelaySeconds ({base})")
    in_flight = max(receive.in_flight_seconds, receive.visibility_seconds)
    if cap + in_flight > MAX_VISIBILITY_SECONDS:
        raise ContextError(
            f"retryMaxDelaySeconds ({cap}) plus the longest a message can be in flight before its backoff is set "
            f"({in_flight} s: visibilityTimeoutSeconds, or maxBatchingWindowSeconds and functionTimeoutSeconds) "
            f"must stay within the {MAX_VISIBILITY_SECONDS} s SQS allows a message to stay invisible after a receive"
        )
    tolerance = tolerance_hours * 3_600
    if given("maxReceiveCount"):
        receives = _int(raw, "maxReceiveCount", 1, SQS_MAX_RECEIVE_COUNT)
        span = guaranteed_retry_span_seconds(receives, base, cap)
        if span < tolerance:
            raise ContextError(
                f"maxReceiveCount ({receives}) gives a failing message its last try {span} s after its first, "
                f"less than outageToleranceHours ({tolerance_hours} h); leave it unset to derive it, or raise it to "
                f"{receives_for_tolerance(tolerance, base, cap, SQS_MAX_RECEIVE_COUNT)}"
            )
    else:
        try:
            receives = receives_for_tolerance(tolerance, base, cap, SQS_MAX_RECEIVE_COUNT)
        except ValueError as error:
            raise ContextError(
                f"outageToleranceHours ({tolerance_hours}): {error}; raise retryMaxDelaySeconds"
            ) from None
    longest = sum(receive.longest(nominal_delay_seconds(n, base, cap)) for n in range(1, receives + 1))
    if longest >= queue_retention_days * 86_400:
        raise ContextError(
            f"queueRetentionDays ({queue_retention_days}) must outlast the longest retry schedule ({longest} s over "
            f"{receives} receives), or a failing message expires before it reaches the dead-letter queue"
        )
    return receives, tolerance_hours, base, cap


def _log_level(raw: Callable[[str], Any]) -> str:
    """``logLevel``: DEBUG or INFO, the levels Lambda's application log filter can take in this stack.

    The filter must stay at INFO or below, or Lambda drops the EMF metric documents (they carry no
    level, so Lambda files them as INFO) and no alarm on a custom metric can fire. Powertools' Logger
    follows the filter's level (``AWS_LAMBDA_LOG_LEVEL``) over ``LOG_LEVEL``, so a quieter level
    cannot be had through ``LOG_LEVEL`` either: WARNING and ERROR are refused rather than ignored.
    """
    value = raw("logLevel")
    if value in _QUIETER_LOG_LEVELS:
        raise ContextError(
            f"logLevel {value} is not available in Lambda: its log filter would drop the metric documents "
            "(printed without a level, so filed as INFO) and the alarms on the adapter's own metrics could "
            f"never fire; use one of {', '.join(_LOG_LEVELS)}"
        )
    return _choice(raw, "logLevel", _LOG_LEVELS)


def _ledger_retention(raw: Callable[[str], Any], given: Callable[[str], bool], queue_retention_days: int) -> int:
    """Ledger retention: it must outlive the last delivery of any message.

    A dead-lettered message lives DLQ_RETENTION_DAYS after its original send; a redrive puts it back
    in the main queue with a fresh retention clock, so it can be delivered up to
    ``DLQ_RETENTION_DAYS + queueRetentionDays`` after it was first seen. A row deleted before that
    would let the redriven message be published again.
    """
    needed = DLQ_RETENTION_DAYS + queue_retention_days
    if not given("ledgerRetentionDays"):
        return needed
    days = _int(raw, "ledgerRetentionDays", 1, 3_650)
    if days < needed:
        raise ContextError(
            f"ledgerRetentionDays ({days}) must be at least {DLQ_RETENTION_DAYS} (dead-letter retention) + "
            f"queueRetentionDays ({queue_retention_days}) = {needed}, or a message redriven from the dead-letter "
            "queue is no longer recognised as a duplicate"
        )
    return days


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
