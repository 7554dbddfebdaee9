"""A health URL without auth (``healthUrlAuth=NONE``, ``HEALTH_URL_AUTH=NONE``) answers the world.

It says how the service is, and nothing about what it is made of: the overall status and each
check's status, no resource names, depths, ages, latencies or error codes. And a flood of requests
costs a bounded number of checks: the answer is computed at most once per
``PUBLIC_ANSWER_SECONDS`` in each execution environment (and the function has a reserved
concurrency of two), so CloudWatch ``GetMetricData`` calls and ledger queries do not grow with the
request rate. Direct invocations (the operators' tool, authorised by IAM) keep every detail.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from health import handler as health_handler
from health.public import PUBLIC_ANSWER_SECONDS, PublicAnswers
from health.settings import HealthSettings
from health.wiring import HealthDependencies
from telemetry_adapter.config import ConfigurationError
from tests.health.conftest import call, dependencies_for
from tests.health.test_endpoint import CHECKS, write_heartbeat


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def public(health_env: dict[str, str], clock: Clock | None = None) -> HealthDependencies:
    dependencies = dependencies_for({**health_env, "HEALTH_URL_AUTH": "NONE"})
    assert dependencies.public_answers is not None
    if clock is not None:
        dependencies = HealthDependencies(**{**vars(dependencies), "public_answers": PublicAnswers(clock=clock)})
    return dependencies


def metric_calls(dependencies: HealthDependencies) -> list[str]:
    """Every GetMetricData call the dependencies' CloudWatch client sends from now on."""
    calls: list[str] = []
    lock = threading.Lock()

    def count(**_: Any) -> None:
        with lock:
            calls.append("GetMetricData")

    dependencies.cloudwatch.meta.events.register("before-call.cloudwatch.GetMetricData", count)
    return calls


def test_the_public_answer_holds_statuses_only(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    status, headers, body = call(public(health_env))
    assert status == 200
    assert headers["cache-control"] == "no-store"
    assert set(body) == {"status", "checks", "time"}
    assert body["status"] == "ok"
    assert body["checks"] == {name: {"status": "ok"} for name in CHECKS}
    text = json.dumps(body)
    for detail in ("submissions", "events", "latency_ms", "visible", "age_seconds", "stream_status"):
        assert detail not in text


def test_a_failing_service_is_still_503_in_public(health_env: dict[str, str], stopped_database_url: str) -> None:
    status, _, body = call(public({**health_env, "DATABASE_URL": stopped_database_url}))
    assert status == 503
    assert body["checks"]["ledger"] == {"status": "failing"}  # no error code, no host


def test_a_flood_of_requests_runs_the_checks_once_per_period(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    clock = Clock()
    dependencies = public(health_env, clock)
    calls = metric_calls(dependencies)
    answers = [call(dependencies)[2] for _ in range(20)]
    assert calls == ["GetMetricData"]
    assert all(answer == answers[0] for answer in answers)
    clock.now += PUBLIC_ANSWER_SECONDS
    call(dependencies)
    assert calls == ["GetMetricData", "GetMetricData"]


def test_direct_invocations_keep_every_detail(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    answer = health_handler.handle({"operation": "health"}, public(health_env))
    assert answer["checks"]["queue"]["queue"] == "submissions"
    assert "latency_ms" in answer["checks"]["ledger"]


def test_an_authenticated_url_keeps_every_detail(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    dependencies = dependencies_for(health_env)
    assert dependencies.public_answers is None
    _, _, body = call(dependencies)
    assert body["checks"]["queue"]["queue"] == "submissions"


@pytest.mark.parametrize("value", ["none", "IAM", "public"])
def test_health_url_auth_names_an_auth_type(value: str) -> None:
    with pytest.raises(ConfigurationError, match="HEALTH_URL_AUTH"):
        HealthSettings.from_env({"HEALTH_URL_AUTH": value})
    assert HealthSettings.from_env({"HEALTH_URL_AUTH": "NONE"}).public_url is True
    assert HealthSettings.from_env({}).public_url is False
