"""Configuration: defaults, validation errors that name the variable, database settings."""

from __future__ import annotations

import ssl

import pytest

from telemetry_adapter.config import ConfigurationError, Settings
from telemetry_adapter.ledger.connection import DatabaseSettings, is_connection_failure
from telemetry_adapter.runtime import build_pipeline
from telemetry_adapter.time_budget import DEFAULT_STATEMENT_TIMEOUT_MS, margin_problem, minimum_margin_ms


def test_defaults() -> None:
    settings = Settings.from_env({"STREAM_NAME": "events"})
    assert settings.limits.max_body_bytes == 1024 * 1024
    assert settings.limits.max_events == 10_000
    assert settings.limits.max_cmdl_chars == 32 * 1024
    assert settings.limits.max_string_chars == 1024
    assert settings.statement_timeout_ms == DEFAULT_STATEMENT_TIMEOUT_MS
    assert settings.publish.safety_margin_ms == minimum_margin_ms(DEFAULT_STATEMENT_TIMEOUT_MS)
    assert margin_problem(settings.publish.safety_margin_ms, settings.statement_timeout_ms) is None


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "STREAM_NAME"),
        ({"STREAM_NAME": "  "}, "STREAM_NAME"),
        ({"STREAM_NAME": "s", "MAX_BODY_BYTES": "lots"}, "MAX_BODY_BYTES"),
        ({"STREAM_NAME": "s", "MAX_EVENTS_PER_SUBMISSION": "0"}, "MAX_EVENTS_PER_SUBMISSION"),
        ({"STREAM_NAME": "s", "PUBLISH_CONCURRENCY": "1000"}, "PUBLISH_CONCURRENCY"),
        ({"STREAM_NAME": "s", "TIME_BUDGET_MARGIN_MS": "-1"}, "TIME_BUDGET_MARGIN_MS"),
        # The margin must hold a Kinesis call, one ledger statement and the response.
        ({"STREAM_NAME": "s", "TIME_BUDGET_MARGIN_MS": "5000"}, "TIME_BUDGET_MARGIN_MS"),
        ({"STREAM_NAME": "s", "LEDGER_STATEMENT_TIMEOUT_MS": "20000"}, "TIME_BUDGET_MARGIN_MS"),
        ({"STREAM_NAME": "s", "LEDGER_STATEMENT_TIMEOUT_MS": "50"}, "LEDGER_STATEMENT_TIMEOUT_MS"),
        # Under the reconnect floor a statement timeout could never hold a reconnect: every batch would
        # end as a deadline stop, with no ledger alarm.
        ({"STREAM_NAME": "s", "LEDGER_STATEMENT_TIMEOUT_MS": "300"}, "LEDGER_STATEMENT_TIMEOUT_MS"),
        ({"STREAM_NAME": "s", "LEDGER_MAX_IDLE_SECONDS": "0"}, "LEDGER_MAX_IDLE_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env(env)


def test_a_longer_statement_timeout_with_a_margin_that_holds_it() -> None:
    env = {"STREAM_NAME": "s", "LEDGER_STATEMENT_TIMEOUT_MS": "8000", "TIME_BUDGET_MARGIN_MS": "16000"}
    settings = Settings.from_env(env)
    assert (settings.statement_timeout_ms, settings.publish.safety_margin_ms) == (8_000, 16_000)


def test_tools_that_compress_time_may_skip_the_margin_rule() -> None:
    """The local runner and the chaos run use invocations of a few seconds on purpose."""
    env = {"STREAM_NAME": "s", "TIME_BUDGET_MARGIN_MS": "300"}
    assert Settings.from_env(env, check_time_budget=False).publish.safety_margin_ms == 300


def test_database_url_wins() -> None:
    settings = DatabaseSettings.from_env(
        {"DATABASE_URL": "postgresql://app:s%40cret@db.local:6543/ledger?sslmode=require", "DB_HOST": "ignored"}
    )
    assert (settings.host, settings.port, settings.database, settings.user) == ("db.local", 6543, "ledger", "app")
    assert settings.password == "s@cret"
    assert settings.tls == "require"
    assert settings.iam_region is None


def test_unix_socket_url() -> None:
    settings = DatabaseSettings.from_url("postgresql://postgres:@/postgres?host=/tmp/pgdir")
    assert settings.unix_socket == "/tmp/pgdir/.s.PGSQL.5432"
    assert settings.password is None


def test_rds_proxy_settings_use_iam_and_verified_tls() -> None:
    settings = DatabaseSettings.from_env(
        {
            "DB_HOST": "proxy.example",
            "DB_PORT": "5432",
            "DB_NAME": "ledger",
            "DB_USER": "app",
            "AWS_REGION": "eu-west-1",
        }
    )
    assert settings.tls == "verify-full"
    assert settings.iam_region == "eu-west-1"
    assert settings.password is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_HOST": "h", "DB_NAME": "d"}, "DB_USER"),
        ({"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u", "DB_PORT": "x", "AWS_REGION": "r"}, "DB_PORT"),
        ({"DB_HOST": "h", "DB_NAME": "d", "DB_USER": "u"}, "AWS_REGION"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://@host/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@host/db?sslmode=allow"}, "sslmode"),
    ],
)
def test_bad_database_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DatabaseSettings.from_env(env)


def test_password_is_not_echoed_in_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        DatabaseSettings.from_env({"DATABASE_URL": "postgresql://u:hunter2@host:99999/db"})
    assert "hunter2" not in str(caught.value)


def test_connection_failures_are_recognised() -> None:
    import pg8000.native

    assert is_connection_failure(ConnectionResetError())
    assert is_connection_failure(pg8000.native.DatabaseError({"C": "57P01", "M": "terminating connection"}))
    assert is_connection_failure(pg8000.native.DatabaseError({"C": "08006"}))
    assert not is_connection_failure(pg8000.native.DatabaseError({"C": "23505"}))
    assert not is_connection_failure(ValueError())
    assert ssl.create_default_context().check_hostname


def test_the_processor_hands_back_to_the_queue_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1:9/ledger")  # never connected here
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/submissions"
    with_queue = build_pipeline(Settings.from_env({"STREAM_NAME": "s", "QUEUE_URL": queue}))
    assert with_queue.handback is not None
    assert with_queue.handback.queue_url == queue
    assert build_pipeline(Settings.from_env({"STREAM_NAME": "s"})).handback is None


def test_retry_and_breaker_settings_are_read_and_the_cap_holds_the_base() -> None:
    settings = Settings.from_env(
        {
            "STREAM_NAME": "s",
            "RETRY_BASE_DELAY_SECONDS": "5",
            "RETRY_MAX_DELAY_SECONDS": "5",
            "CIRCUIT_BREAKER_FAILURES": "0",
            "CIRCUIT_BREAKER_COOLDOWN_SECONDS": "120",
        }
    )
    assert (settings.retry.base_delay_seconds, settings.retry.max_delay_seconds) == (5, 5)
    assert (settings.breaker.failures_to_open, settings.breaker.cooldown_seconds) == (0, 120)
    with pytest.raises(ConfigurationError, match=r"RETRY_MAX_DELAY_SECONDS \(4\) must be at least RETRY_BASE_DELAY"):
        Settings.from_env({"STREAM_NAME": "s", "RETRY_BASE_DELAY_SECONDS": "5", "RETRY_MAX_DELAY_SECONDS": "4"})


def test_the_processor_quarantines_to_the_bucket_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1:9/ledger")  # never connected here
    with_bucket = build_pipeline(Settings.from_env({"STREAM_NAME": "s", "QUARANTINE_BUCKET": " quarantine "}))
    assert with_bucket.quarantine is not None
    assert with_bucket.quarantine.bucket == "quarantine"
    assert build_pipeline(Settings.from_env({"STREAM_NAME": "s", "QUARANTINE_BUCKET": "  "})).quarantine is None
    assert build_pipeline(Settings.from_env({"STREAM_NAME": "s"})).quarantine is None
