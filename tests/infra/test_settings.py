"""Context validation: defaults, string values from `-c key=value`, and a clear error for each bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.settings import DEFAULTS, ContextError, load_settings


def test_defaults_are_the_documented_ones() -> None:
    settings = load_settings({})
    assert settings.batch_size == 100
    assert settings.max_batching_window_seconds == 5
    assert settings.max_concurrency == 10
    assert settings.function_timeout_seconds == 60
    assert settings.function_memory_mb == 512
    assert settings.visibility_timeout_seconds == 360  # 6 x the function timeout
    assert settings.max_receive_count == 5
    assert settings.stream_mode == "on-demand"
    assert settings.shard_count is None
    assert settings.health_url_auth == "AWS_IAM"
    assert settings.alarm_email is None
    assert settings.tracing is True


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
        }
    )
    assert (settings.batch_size, settings.function_timeout_seconds) == (500, 120)
    assert settings.visibility_timeout_seconds == 720
    assert (settings.stream_mode, settings.shard_count) == ("provisioned", 4)
    assert settings.tracing is False
    assert settings.alarm_reject_rate_percent == 2.5
    assert settings.alarm_email == "ops@example.com"


def test_lookup_function_is_accepted() -> None:
    context = {"maxConcurrency": 50}
    assert load_settings(context.get).max_concurrency == 50


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
        ({"streamMode": "turbo"}, "streamMode must be one of on-demand, provisioned"),
        ({"streamMode": "provisioned"}, "shardCount is required when streamMode is provisioned"),
        ({"shardCount": 2}, "shardCount applies only when streamMode is provisioned"),
        ({"healthUrlAuth": "PUBLIC"}, "healthUrlAuth must be one of AWS_IAM, NONE"),
        ({"alarmEmail": "not-an-address"}, "alarmEmail must be an e-mail address"),
        ({"tracing": "yes"}, "tracing must be true or false"),
        ({"alarmRejectRatePercent": 150}, "alarmRejectRatePercent must be a number between 0 and 100"),
        ({"alarmRejectRatePercent": "nan"}, "alarmRejectRatePercent must be a number"),
        ({"queueRetentionDays": 14, "ledgerRetentionDays": 7}, "ledgerRetentionDays (7) must cover queueRetentionDays"),
        ({"timeBudgetMarginMs": 60_000}, "timeBudgetMarginMs (60000) must be below functionTimeoutSeconds"),
        ({"dbInstanceClass": "huge"}, "dbInstanceClass must look like t4g.micro"),
        ({"logLevel": "LOUD"}, "logLevel must be one of"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ContextError) as raised:
        load_settings(context)
    assert message in str(raised.value)


def test_every_default_is_valid_and_documented() -> None:
    documented = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    load_settings(DEFAULTS)
    missing = [key for key in DEFAULTS if f"`{key}`" not in documented]
    assert missing == []
