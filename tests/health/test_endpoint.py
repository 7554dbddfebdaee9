"""The health endpoint against a real PostgreSQL and moto: ok, degraded, failing, 404 and 405."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest

from devkit.lambda_shapes import LambdaContext
from devkit.postgres import fresh_database
from health import handler as health_handler
from health.wiring import default_dependencies
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from tests.conftest import REGION
from tests.health.conftest import CHECK_TIMEOUT_MS, HungServer, call, dependencies_for, function_url_event

CHECKS = {"ledger", "stream", "queue", "oldest_message", "dead_letter_queue", "processor_heartbeat", "circuit_breaker"}


def write_heartbeat(
    database_url: str, *, age_seconds: float = 0, worker: str = "worker-test", breaker: str = "closed"
) -> None:
    """Record a processor batch the way the processor does, optionally backdated."""
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(database_url).connect))
    submission_id = str(uuid.uuid4())
    ledger.claim([ClaimRequest(submission_id, str(uuid.uuid4()), b"digest", 1)], owner="test", lease_seconds=60)
    ledger.record_outcome({submission_id: 1}, owner="test", worker=worker, batch_size=1, breaker=breaker)
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        connection.run(
            "UPDATE processor_heartbeat SET last_batch_at = now() - make_interval(secs => :age)", age=float(age_seconds)
        )
    finally:
        connection.close()


def assert_nothing_secret(body: Any, env: dict[str, str]) -> None:
    text = json.dumps(body)
    for secret in ("not-a-secret", "127.0.0.1", "postgresql://", env["QUEUE_URL"], env["DLQ_URL"], "123456789012"):
        assert secret not in text


def test_ok_when_every_dependency_is_healthy(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    status, headers, body = call(dependencies_for(health_env))
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert body["status"] == "ok", body
    assert set(body["checks"]) == CHECKS
    for name, check in body["checks"].items():
        assert check["status"] == "ok", name
        assert 0 <= check["latency_ms"] < CHECK_TIMEOUT_MS
    assert body["checks"]["stream"]["stream_status"] == "ACTIVE"
    assert body["checks"]["stream"]["open_shards"] == 4
    assert body["checks"]["queue"] | {"latency_ms": 0} == {
        "status": "ok",
        "latency_ms": 0,
        "queue": "submissions",
        "visible": 0,
        "in_flight": 0,
    }
    assert body["checks"]["oldest_message"]["age_seconds"] is None  # moto keeps no SQS metrics: unknown
    assert body["checks"]["dead_letter_queue"]["messages"] == 0
    assert 0 <= body["checks"]["processor_heartbeat"]["age_seconds"] < 60
    assert body["checks"]["circuit_breaker"] | {"latency_ms": 0} == {
        "status": "ok",
        "latency_ms": 0,
        "open": 0,
        "half_open": 0,
        "processors": 1,
        "max_age_seconds": 900,
    }
    assert body["time"].endswith("Z")
    assert_nothing_secret(body, health_env)


def test_root_path_answers_like_health(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    status, _, body = call(dependencies_for(health_env), path="/")
    assert (status, body["status"]) == (200, "ok")


def test_queue_depth_counts_waiting_and_in_flight_messages(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    sqs = boto3.client("sqs", region_name=REGION)
    for n in range(3):
        sqs.send_message(QueueUrl=health_env["QUEUE_URL"], MessageBody=f"m{n}")
    sqs.receive_message(QueueUrl=health_env["QUEUE_URL"], MaxNumberOfMessages=1, VisibilityTimeout=60)
    _, _, body = call(dependencies_for(health_env))
    assert (body["checks"]["queue"]["visible"], body["checks"]["queue"]["in_flight"]) == (2, 1)
    assert body["status"] == "ok"


def test_degraded_when_the_dead_letter_queue_holds_messages(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=health_env["DLQ_URL"], MessageBody="poison")
    status, _, body = call(dependencies_for(health_env))
    assert (status, body["status"]) == (200, "degraded")
    dlq = body["checks"]["dead_letter_queue"]
    assert (dlq["status"], dlq["reason"], dlq["messages"]) == ("degraded", "messages_waiting", 1)
    assert {name for name, check in body["checks"].items() if check["status"] != "ok"} == {"dead_letter_queue"}


def test_degraded_when_no_processor_ever_recorded_a_batch(health_env: dict[str, str]) -> None:
    status, _, body = call(dependencies_for(health_env))
    assert (status, body["status"]) == (200, "degraded")
    heartbeat = body["checks"]["processor_heartbeat"]
    assert (heartbeat["status"], heartbeat["reason"], heartbeat["age_seconds"]) == ("degraded", "never", None)


def test_degraded_when_the_last_batch_is_older_than_the_threshold(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"], age_seconds=120)
    env = {**health_env, "HEARTBEAT_MAX_AGE_SECONDS": "60"}
    status, _, body = call(dependencies_for(env))
    assert (status, body["status"]) == (200, "degraded")
    heartbeat = body["checks"]["processor_heartbeat"]
    assert (heartbeat["status"], heartbeat["reason"], heartbeat["max_age_seconds"]) == ("degraded", "stale", 60)
    assert heartbeat["age_seconds"] >= 120


def test_degraded_while_a_processor_reports_its_circuit_breaker_open(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"], worker="worker-a")
    write_heartbeat(health_env["DATABASE_URL"], worker="worker-b", breaker="open")
    status, _, body = call(dependencies_for(health_env))
    assert (status, body["status"]) == (200, "degraded")
    breaker = body["checks"]["circuit_breaker"]
    assert (breaker["status"], breaker["reason"], breaker["open"], breaker["processors"]) == ("degraded", "open", 1, 2)
    assert {name for name, check in body["checks"].items() if check["status"] != "ok"} == {"circuit_breaker"}


def test_an_old_open_breaker_and_a_heartbeat_without_the_column_do_not_degrade(health_env: dict[str, str]) -> None:
    """A processor that stopped long ago no longer counts; one whose code predates the breaker
    (a rollback runs the older code on the newer schema) writes no state: unknown, not open."""
    write_heartbeat(health_env["DATABASE_URL"], worker="worker-gone", breaker="open", age_seconds=3_600)
    connection = DatabaseSettings.from_url(health_env["DATABASE_URL"]).connect()
    try:  # the heartbeat statement of the code before migration 0002, verbatim
        connection.run(
            "INSERT INTO processor_heartbeat (worker_id, last_batch_at, last_batch_size) "
            "VALUES ('worker-old', now(), 1) "
            "ON CONFLICT (worker_id) DO UPDATE SET last_batch_at = excluded.last_batch_at, "
            "last_batch_size = excluded.last_batch_size"
        )
    finally:
        connection.close()
    status, _, body = call(dependencies_for(health_env))
    breaker = body["checks"]["circuit_breaker"]
    assert (breaker["status"], breaker["open"], breaker["processors"]) == ("ok", 0, 1)
    assert (status, body["status"]) == (200, "ok")


def test_failing_when_the_database_is_stopped(health_env: dict[str, str], stopped_database_url: str) -> None:
    env = {**health_env, "DATABASE_URL": stopped_database_url}
    status, _, body = call(dependencies_for(env))
    assert (status, body["status"]) == (503, "failing")
    assert body["checks"]["ledger"]["status"] == "failing"
    assert body["checks"]["ledger"]["reason"] == "error"
    assert body["checks"]["ledger"]["error"] == "InterfaceError"
    assert body["checks"]["stream"]["status"] == "ok"
    assert_nothing_secret(body, env)


def test_failing_when_the_ledger_schema_is_missing(health_env: dict[str, str]) -> None:
    """The server answers, but the migrations never ran (or ran against another database)."""
    server = urlunsplit(urlsplit(health_env["DATABASE_URL"])._replace(path="/postgres"))
    with fresh_database(server, migrate=False) as empty:
        env = {**health_env, "DATABASE_URL": empty}
        status, _, body = call(dependencies_for(env))
    assert (status, body["status"]) == (503, "failing")
    ledger = body["checks"]["ledger"]
    assert (ledger["status"], ledger["reason"]) == ("failing", "schema_missing")
    assert ledger["missing"] == ["processor_heartbeat", "submission_ledger"]
    assert_nothing_secret(body, env)


def test_failing_within_the_timeout_when_the_database_hangs(
    health_env: dict[str, str], hung_database: HungServer
) -> None:
    env = {**health_env, "DATABASE_URL": hung_database.url, "HEALTH_CHECK_TIMEOUT_MS": "500"}
    dependencies = dependencies_for(env)
    reached = 0
    for _ in range(2):  # a warm container: the second call must not queue behind the first call's hung probe
        status, _, body = call(dependencies)
        assert (status, body["status"]) == (503, "failing")
        for name in ("ledger", "processor_heartbeat"):
            check = body["checks"][name]
            assert (check["status"], check["reason"]) == ("failing", "timeout"), name
        # Each call's probes reached the hung server themselves, while the earlier ones still hang there.
        now = hung_database.wait_for_connections(reached + 1)
        assert now > reached
        reached = now
        assert body["checks"]["stream"]["status"] == "ok"
        assert body["checks"]["queue"]["status"] == "ok"


def test_failing_when_the_stream_is_missing(health_env: dict[str, str]) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    env = {**health_env, "STREAM_NAME": "no-such-stream"}
    status, _, body = call(dependencies_for(env))
    assert (status, body["status"]) == (503, "failing")
    stream = body["checks"]["stream"]
    assert (stream["status"], stream["reason"], stream["stream"]) == ("failing", "not_found", "no-such-stream")
    assert {name for name, check in body["checks"].items() if check["status"] != "ok"} == {"stream"}


def test_failing_and_naming_the_variable_when_a_resource_is_not_configured(health_env: dict[str, str]) -> None:
    env = {key: value for key, value in health_env.items() if key not in ("QUEUE_URL", "DATABASE_URL")}
    status, _, body = call(dependencies_for(env))
    assert (status, body["status"]) == (503, "failing")
    assert body["checks"]["queue"] | {"latency_ms": 0} == {
        "status": "failing",
        "latency_ms": 0,
        "reason": "not_configured",
        "variable": "QUEUE_URL",
    }
    assert body["checks"]["ledger"]["variable"] == "DATABASE_URL"


@pytest.mark.parametrize("path", ["/nope", "/health/extra", "/healthz"])
def test_unknown_paths_are_404(health_env: dict[str, str], path: str) -> None:
    status, headers, body = call(dependencies_for(health_env), path=path)
    assert (status, body["message"]) == (404, "not found")
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD"])
def test_other_methods_are_405_with_allow(health_env: dict[str, str], method: str) -> None:
    status, headers, body = call(dependencies_for(health_env), method=method)
    assert (status, headers["allow"], body["allowed"]) == (405, "GET", ["GET"])


def test_lambda_handler_reads_its_environment_once(health_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    write_heartbeat(health_env["DATABASE_URL"])
    for key, value in health_env.items():
        monkeypatch.setenv(key, value)
    default_dependencies.cache_clear()
    try:
        first = health_handler.lambda_handler(function_url_event(), LambdaContext())
        second = health_handler.lambda_handler(function_url_event(), LambdaContext())
        assert [first["statusCode"], second["statusCode"]] == [200, 200]
        assert json.loads(second["body"])["status"] == "ok"
        assert default_dependencies.cache_info().misses == 1
        ledger = default_dependencies().ledger
        assert ledger is not None
        with ledger.use() as shared:
            assert shared.statements == 6  # ping, heartbeat and circuit breakers per call, on one reused connection
    finally:
        default_dependencies.cache_clear()


def test_lambda_handler_answers_503_when_misconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTH_CHECK_TIMEOUT_MS", "soon")
    default_dependencies.cache_clear()
    try:
        response = health_handler.lambda_handler(function_url_event(), LambdaContext())
    finally:
        default_dependencies.cache_clear()
    assert response["statusCode"] == 503
    assert json.loads(response["body"]) == {"status": "failing", "checks": {}, "reason": "not_configured"}
