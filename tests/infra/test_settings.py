"""Context validation: defaults, string values from `-c key=value`, and a clear error for each bad value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.settings import DEFAULT_RUNBOOK_URL, DEFAULTS, ContextError, load_settings
from telemetry_adapter.retry_schedule import guaranteed_retry_span_seconds
from telemetry_adapter.time_budget import DEFAULT_STATEMENT_TIMEOUT_MS, margin_problem

ROOT = Path(__file__).resolve().parents[2]
PAGED = {"alarmEmail": "ops@example.com", "runbookUrl": "https://ops.example.com/runbook/"}


def test_defaults_are_the_documented_ones() -> None:
    settings = load_settings({})
    assert settings.stage == "dev"
    assert settings.batch_size == 100
    assert settings.max_batching_window_seconds == 5
    assert settings.max_concurrency == 10
    assert settings.function_timeout_seconds == 60
    assert settings.function_memory_mb == 512
    assert settings.visibility_timeout_seconds == 360  # 6 x the function timeout
    assert settings.stream_mode == "on-demand"
    assert settings.shard_count is None
    assert settings.stream_retention_hours == 24
    assert settings.health_url_auth == "AWS_IAM"
    assert settings.alarm_email is None
    assert settings.tracing is True
    assert settings.lambda_insights is True
    assert settings.local is False


def test_command_line_strings_are_parsed() -> None:
    settings = load_settings(
        {
            "batchSize": "500",
            "functionTimeoutSeconds": "120",
            "streamMode": "provisioned",
            "shardCount": "4",
            "tracing": "false",
            "alarmRejectRatePercent": "2.5",
            "alarmEmail": "ops@example.com",
            "stage": "prod-eu",
            "runbookUrl": "https://docs.example.com/telemetry/runbook/",
        }
    )
    assert (settings.batch_size, settings.function_timeout_seconds) == (500, 120)
    assert settings.visibility_timeout_seconds == 720
    assert (settings.stream_mode, settings.shard_count) == ("provisioned", 4)
    assert settings.tracing is False
    assert settings.alarm_reject_rate_percent == 2.5
    assert settings.alarm_email == "ops@example.com"
    assert settings.stage == "prod-eu"


def test_lookup_function_is_accepted() -> None:
    context = {"maxConcurrency": 50}
    assert load_settings(context.get).max_concurrency == 50


# --- stage and protections -------------------------------------------------------------------------


def test_protections_follow_the_stage() -> None:
    dev = load_settings({})
    prod = load_settings({"stage": "prod", **PAGED})
    assert (dev.termination_protection, dev.db_deletion_protection) == (False, False)
    assert (prod.termination_protection, prod.db_deletion_protection) == (True, True)
    first_create = load_settings({"stage": "prod", "dbDeletionProtection": "false", **PAGED})
    assert first_create.db_deletion_protection is False
    assert first_create.termination_protection is True


@pytest.mark.parametrize("stage", ["Prod", "1prod", "prod-", "pro--d", "a" * 21, "prod_eu", ""])
def test_stage_must_fit_every_resource_name(stage: str) -> None:
    if stage == "":
        assert load_settings({"stage": stage}).stage == "dev"  # empty means "not set"
        return
    with pytest.raises(ContextError, match="stage must be"):
        load_settings({"stage": stage, **PAGED})


def test_a_stage_other_than_dev_needs_someone_to_page() -> None:
    runbook = {"runbookUrl": PAGED["runbookUrl"]}
    with pytest.raises(ContextError, match="needs someone to page: set alarmEmail"):
        load_settings({"stage": "prod", **runbook})
    assert load_settings({"stage": "prod", "alarmsSubscribedExternally": "true", **runbook}).alarm_email is None
    assert load_settings({"stage": "prod", **PAGED}).alarm_email == "ops@example.com"


def test_a_stage_other_than_dev_needs_its_own_runbook_url() -> None:
    """Every alarm description links to the runbook; the default is the docs served on the deployer's
    own machine, useless to whoever is paged."""
    assert load_settings({}).runbook_url == DEFAULT_RUNBOOK_URL
    for context in ({"stage": "prod", "alarmEmail": "ops@example.com"}, {"stage": "prod", **PAGED, "runbookUrl": ""}):
        with pytest.raises(ContextError, match="runbookUrl"):
            load_settings(context)
    with pytest.raises(ContextError, match="runbookUrl"):
        load_settings({"stage": "prod", **PAGED, "runbookUrl": DEFAULT_RUNBOOK_URL})
    assert load_settings({"stage": "prod", **PAGED}).runbook_url == PAGED["runbookUrl"]


# --- per-stage values committed in cdk.json ---------------------------------------------------------


STAGES = {"prod": {"dbMultiAz": True, **PAGED}, "staging": {"alarmsSubscribedExternally": True}}


def test_the_selected_stages_committed_values_apply() -> None:
    prod = load_settings({"stage": "prod", "stages": STAGES})
    assert prod.db_multi_az is True
    assert prod.alarm_email == "ops@example.com"
    assert prod.runbook_url == PAGED["runbookUrl"]
    staging = load_settings({"stage": "staging", "stages": STAGES, "runbookUrl": PAGED["runbookUrl"]})
    assert staging.db_multi_az is False  # prod's values stay prod's
    assert staging.alarms_subscribed_externally is True
    assert load_settings({"stages": STAGES}).db_multi_az is False  # dev has no entry


def test_a_value_given_on_the_command_line_wins_over_the_stages_entry() -> None:
    assert load_settings({"stage": "prod", "stages": STAGES, "dbMultiAz": "false"}).db_multi_az is False
    assert load_settings({"stage": "prod", "stages": STAGES, "batchSize": "20"}).batch_size == 20


def test_a_stages_entry_is_validated_like_the_command_line() -> None:
    with pytest.raises(ContextError, match="dbMultiAz must be true or false"):
        load_settings({"stage": "prod", "stages": {"prod": {**PAGED, "dbMultiAz": "yes"}}})


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            {"prod": {**PAGED, "dbMultiAZ": True}},
            "stages.prod: unknown context key 'dbMultiAZ' (did you mean dbMultiAz?)",
        ),
        ({"staging": {"shardcount": 2}}, "stages.staging: unknown context key 'shardcount'"),
        ({"prod": {**PAGED, "stage": "other"}}, "stages.prod: unknown context key 'stage'"),
        ({"Prod": {}}, "stages: 'Prod' is not a stage name"),
        ({"prod": ["dbMultiAz"]}, "stages.prod must be an object"),
        (["prod"], "stages must be an object"),
    ],
)
def test_every_stages_entry_names_only_known_keys(stages: Any, message: str) -> None:
    """Typos are caught on any synth, whichever stage is deployed."""
    with pytest.raises(ContextError) as raised:
        load_settings({"stages": stages})
    assert message in str(raised.value)


def test_the_committed_stages_are_valid() -> None:
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    assert load_settings(context).stage == "dev"
    for stage in context["stages"]:
        settings = load_settings({**context, "stage": stage, **PAGED})
        assert settings.stage == stage
    assert load_settings({**context, "stage": "prod", **PAGED}).db_multi_az is True


def test_local_template_leaves_out_lambda_insights() -> None:
    assert load_settings({"local": "true"}).lambda_insights is False
    assert load_settings({"lambdaInsights": "false"}).lambda_insights is False
    with pytest.raises(ContextError, match="lambdaInsights must be false with local=true"):
        load_settings({"local": True, "lambdaInsights": True})


# --- retries, outage tolerance, dead-letter queue --------------------------------------------------


def test_max_receive_count_is_derived_from_the_outage_tolerance() -> None:
    settings = load_settings({})
    assert settings.outage_tolerance_hours == 6
    base, cap = settings.retry_base_delay_seconds, settings.retry_max_delay_seconds
    assert guaranteed_retry_span_seconds(settings.max_receive_count, base, cap) >= 6 * 3600
    assert guaranteed_retry_span_seconds(settings.max_receive_count - 1, base, cap) < 6 * 3600
    assert settings.max_receive_count == 53  # 6 hours of halves (15, 30, 60, ..., 450, 450, ...) before the last try
    longer = load_settings({"outageToleranceHours": 12})
    assert longer.max_receive_count > settings.max_receive_count


def test_an_explicit_max_receive_count_must_cover_the_tolerance() -> None:
    with pytest.raises(ContextError, match=r"maxReceiveCount \(5\) gives a failing message its last try"):
        load_settings({"maxReceiveCount": 5})
    generous = load_settings({"maxReceiveCount": 200})
    assert generous.max_receive_count == 200


def test_the_longest_backoff_must_end_within_twelve_hours_of_the_receive() -> None:
    # A throttled invocation may start as late as the visibility timeout after the receive, and SQS
    # refuses a visibility ending more than 12 hours after it.
    assert load_settings({"retryMaxDelaySeconds": 42_000}).retry_max_delay_seconds == 42_000
    longer_visibility = {"visibilityTimeoutSeconds": 1_800, "queueRetentionDays": 11}
    with pytest.raises(ContextError, match=r"retryMaxDelaySeconds \(42000\) plus the longest a message can be"):
        load_settings({"retryMaxDelaySeconds": 42_000, **longer_visibility})
    assert load_settings({"retryMaxDelaySeconds": 41_400, **longer_visibility}).retry_max_delay_seconds == 41_400


def test_the_retry_schedule_must_end_before_the_queue_forgets_the_message() -> None:
    with pytest.raises(ContextError, match="queueRetentionDays \\(1\\) must outlast the longest retry schedule"):
        load_settings({"queueRetentionDays": 1, "outageToleranceHours": 24})
    # Each receive also holds the message for the batching window and the invocation before its backoff
    # is set, or for the visibility timeout when none is: 53 receives of a 900 s function outlast a day.
    load_settings({"queueRetentionDays": 1})
    with pytest.raises(ContextError, match="queueRetentionDays \\(1\\) must outlast the longest retry schedule"):
        load_settings({"queueRetentionDays": 1, "functionTimeoutSeconds": 900})


def test_dead_letter_age_alarm_leaves_time_before_messages_expire() -> None:
    settings = load_settings({})
    # DLQ messages expire 14 days after the original send; up to queueRetentionDays passed before the move.
    assert settings.dead_letter_age_alarm_days == 14 - 4 - 2
    assert load_settings({"queueRetentionDays": 11}).dead_letter_age_alarm_days >= 1
    with pytest.raises(ContextError, match="queueRetentionDays must be an integer between 1 and 11"):
        load_settings({"queueRetentionDays": 12})


def test_ledger_retention_covers_a_redrive() -> None:
    assert load_settings({}).ledger_retention_days == 14 + 4
    assert load_settings({"queueRetentionDays": 7}).ledger_retention_days == 21
    with pytest.raises(ContextError, match=r"ledgerRetentionDays \(14\) must be at least 14 .* = 18"):
        load_settings({"ledgerRetentionDays": 14})
    assert load_settings({"ledgerRetentionDays": 30}).ledger_retention_days == 30


# --- time budget -----------------------------------------------------------------------------------


def test_default_margin_holds_a_kinesis_call_and_a_ledger_statement() -> None:
    settings = load_settings({})
    assert settings.ledger_statement_timeout_ms == DEFAULT_STATEMENT_TIMEOUT_MS
    assert margin_problem(settings.time_budget_margin_ms, settings.ledger_statement_timeout_ms, 60_000) is None


def test_margin_is_checked_with_the_processors_own_rule() -> None:
    with pytest.raises(ContextError, match="timeBudgetMarginMs: the safety margin \\(10000 ms\\) must hold"):
        load_settings({"timeBudgetMarginMs": 10_000})
    with pytest.raises(ContextError, match="timeBudgetMarginMs"):
        load_settings({"ledgerStatementTimeoutMs": 20_000})  # the default margin no longer holds it
    assert load_settings({"ledgerStatementTimeoutMs": 20_000, "timeBudgetMarginMs": 30_000}).time_budget_margin_ms


def test_proxy_borrow_timeout_stays_below_the_statement_timeout() -> None:
    for statement_ms in (2_000, 2_500, 5_000, 60_000):
        settings = load_settings(
            {"ledgerStatementTimeoutMs": statement_ms, "timeBudgetMarginMs": 600_000, "functionTimeoutSeconds": 900}
        )
        assert 1 <= settings.proxy_borrow_timeout_seconds * 1000 < statement_ms


def test_health_timeout_follows_its_check_timeout() -> None:
    assert load_settings({}).health_timeout_seconds > 2 * 2
    assert load_settings({"healthCheckTimeoutMs": 8_000}).health_timeout_seconds > 2 * 8


# --- storage ---------------------------------------------------------------------------------------


def test_storage_autoscaling_needs_room_to_grow() -> None:
    assert load_settings({}).db_max_allocated_storage_gb == 100
    with pytest.raises(ContextError, match="dbMaxAllocatedStorageGb \\(21\\) must be at least 10% above"):
        load_settings({"dbMaxAllocatedStorageGb": 21})
    with pytest.raises(ContextError, match="alarmFreeStorageGb \\(20\\) must be below dbAllocatedStorageGb"):
        load_settings({"alarmFreeStorageGb": 20})


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"visibilityTimeoutSeconds": 100},
            "visibilityTimeoutSeconds (100) must be at least 6 x functionTimeoutSeconds",
        ),
        ({"functionTimeoutSeconds": 120, "visibilityTimeoutSeconds": 600}, "at least 6 x functionTimeoutSeconds (720)"),
        ({"batchSize": 0}, "batchSize must be an integer between 1 and 10000"),
        ({"batchSize": "lots"}, "batchSize must be an integer"),
        ({"batchSize": True}, "batchSize must be an integer"),
        ({"batchSize": 50, "maxBatchingWindowSeconds": 0}, "maxBatchingWindowSeconds must be at least 1"),
        ({"maxConcurrency": 1}, "maxConcurrency must be an integer between 2 and 1000"),
        ({"functionTimeoutSeconds": 901}, "functionTimeoutSeconds must be an integer between 1 and 900"),
        ({"functionMemoryMb": 64}, "functionMemoryMb must be an integer between 128 and 10240"),
        ({"maxReceiveCount": 0}, "maxReceiveCount must be an integer between 1 and 1000"),
        ({"retryBaseDelaySeconds": 60, "retryMaxDelaySeconds": 30}, "retryMaxDelaySeconds (30) must be at least"),
        ({"outageToleranceHours": 0}, "outageToleranceHours must be an integer between 1 and 168"),
        ({"streamMode": "turbo"}, "streamMode must be one of on-demand, provisioned"),
        ({"streamMode": "provisioned"}, "shardCount is required when streamMode is provisioned"),
        ({"shardCount": 2}, "shardCount applies only when streamMode is provisioned"),
        ({"streamRetentionHours": 12}, "streamRetentionHours must be an integer between 24 and 8760"),
        ({"healthUrlAuth": "PUBLIC"}, "healthUrlAuth must be one of AWS_IAM, NONE"),
        ({"alarmEmail": "not-an-address"}, "alarmEmail must be an e-mail address"),
        ({"runbookUrl": "docs/runbook.md"}, "runbookUrl must be an http(s) URL"),
        ({"runbookUrl": "https://x.example/runbook/#top"}, "runbookUrl must be an http(s) URL without a #fragment"),
        ({"tracing": "yes"}, "tracing must be true or false"),
        ({"alarmRejectRatePercent": 150}, "alarmRejectRatePercent must be a number between 0 and 100"),
        ({"alarmRejectRatePercent": "nan"}, "alarmRejectRatePercent must be a number"),
        ({"timeBudgetMarginMs": 60_000}, "must be below the function timeout (60000 ms)"),
        ({"ledgerStatementTimeoutMs": 1_000}, "ledgerStatementTimeoutMs must be an integer between 2000 and 60000"),
        ({"dbInstanceClass": "huge"}, "dbInstanceClass must look like t4g.micro"),
        ({"logLevel": "LOUD"}, "logLevel must be one of"),
        ({"account": "123456789012"}, "set both account and region context values, or neither"),
        ({"account": "1234", "region": "eu-west-1"}, "account must be a 12-digit AWS account id"),
        ({"account": "123456789012", "region": "Europe"}, "region must be an AWS region name"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ContextError) as raised:
        load_settings(context)
    assert message in str(raised.value)


def test_every_default_is_valid() -> None:
    load_settings(DEFAULTS)


@pytest.mark.parametrize(("level", "filter_level"), [("DEBUG", "DEBUG"), ("INFO", "INFO")])
def test_log_levels_that_keep_the_metrics(level: str, filter_level: str) -> None:
    settings = load_settings({"logLevel": level})
    assert settings.log_level == level
    assert settings.application_log_filter == filter_level


@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_log_levels_above_info_are_refused_because_they_would_drop_the_metrics(level: str) -> None:
    with pytest.raises(ContextError, match=r"logLevel.*metric"):
        load_settings({"logLevel": level})
