"""The safety-margin rule shared by the processor's start-up check and the CDK app's synth check."""

from __future__ import annotations

from telemetry_adapter.time_budget import (
    KINESIS_CALL_TIMEOUT_MS,
    RESPONSE_SLACK_MS,
    margin_problem,
    minimum_margin_ms,
)


def test_the_minimum_margin_holds_a_kinesis_call_a_statement_and_the_response() -> None:
    assert minimum_margin_ms(5_000) == KINESIS_CALL_TIMEOUT_MS + 5_000 + RESPONSE_SLACK_MS


def test_a_margin_too_small_is_explained() -> None:
    problem = margin_problem(minimum_margin_ms(5_000) - 1, 5_000)
    assert problem is not None
    assert "at least" in problem


def test_a_margin_at_the_minimum_is_safe_unless_it_eats_the_whole_function() -> None:
    margin = minimum_margin_ms(5_000)
    assert margin_problem(margin, 5_000, function_timeout_ms=60_000) is None
    assert margin_problem(margin, 5_000, function_timeout_ms=margin) is not None
