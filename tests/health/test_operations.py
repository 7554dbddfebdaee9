"""The health function's direct-invocation operations: the health answer and a read-only ledger lookup,
and proof that no operation is reachable through the Function URL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devkit.lambda_shapes import LambdaContext
from health import handler as health_handler
from health import operations
from health.handler import handle
from health.operations import SubmissionLookup
from health.wiring import default_dependencies
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from tests.health.conftest import dependencies_for, function_url_event


def lookup_for(database_url: str, *, read_only: bool = False) -> SubmissionLookup:
    settings = DatabaseSettings.from_url(database_url)

    def connect(timeout_seconds: float | None = None) -> Any:
        connection = settings.connect(timeout_seconds)
        if read_only:  # any write through this connection fails: "cannot execute ... in a read-only transaction"
            connection.run("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return connection

    return SubmissionLookup(ConnectionProvider(connect))


def record(database_url: str, *, events: int, published: int | None, owner: str = "worker-a") -> tuple[str, str]:
    """A submission claimed by ``owner``; with ``published`` set, its outcome recorded (lease released)."""
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(database_url).connect))
    submission_id, device_id = str(uuid.uuid4()), str(uuid.uuid4())
    ledger.claim([ClaimRequest(submission_id, device_id, b"\x01\x02", events)], owner=owner, lease_seconds=300)
    if published is not None:
        ledger.record_outcome({submission_id: published}, owner=owner, worker="w", batch_size=1)
    return submission_id, device_id


def ask(health_env: dict[str, str], event: dict[str, Any], database_url: str | None = None) -> dict[str, Any]:
    lookup = lookup_for(database_url or health_env["DATABASE_URL"], read_only=True)
    return handle(event, dependencies_for(health_env), lookup=lambda: lookup)


def test_a_completed_submission(health_env: dict[str, str]) -> None:
    submission_id, device_id = record(health_env["DATABASE_URL"], events=3, published=3)
    answer = ask(health_env, {"operation": "submission", "submission_id": submission_id.upper()})
    assert answer["operation"] == "submission"
    assert answer["submission_id"] == submission_id  # canonical, lower case
    assert answer["found"] is True
    ledger = answer["ledger"]
    assert ledger["device_id"] == device_id
    assert (ledger["event_count"], ledger["published_count"], ledger["state"]) == (3, 3, "completed")
    assert ledger["completed_at"].endswith("Z")
    assert ledger["first_seen_at"].endswith("Z")
    assert (ledger["lease_owner"], ledger["lease_expires_at"], ledger["lease_active"]) == (None, None, False)
    assert ledger["content_sha256"] == "0102"
    json.dumps(answer)  # what Lambda serialises


def test_a_submission_in_progress_and_one_left_unfinished(health_env: dict[str, str]) -> None:
    leased, _ = record(health_env["DATABASE_URL"], events=5, published=None, owner="worker-b")
    answer = ask(health_env, {"operation": "submission", "submission_id": leased})["ledger"]
    assert (answer["state"], answer["lease_owner"], answer["lease_active"]) == ("in_progress", "worker-b", True)
    assert answer["lease_expires_at"].endswith("Z")
    assert (answer["published_count"], answer["completed_at"]) == (0, None)
    partial, _ = record(health_env["DATABASE_URL"], events=5, published=2)
    answer = ask(health_env, {"operation": "submission", "submission_id": partial})["ledger"]
    assert (answer["state"], answer["published_count"], answer["lease_active"]) == ("unfinished", 2, False)


def test_an_unknown_submission_and_invalid_ids(health_env: dict[str, str]) -> None:
    unknown = str(uuid.uuid4())
    assert ask(health_env, {"operation": "submission", "submission_id": unknown}) == {
        "operation": "submission",
        "submission_id": unknown,
        "found": False,
    }
    for bad in (None, 42, "", "not-a-uuid", "'; DROP TABLE submission_ledger; --", "a" * 10_000):
        answer = ask(health_env, {"operation": "submission", "submission_id": bad})
        assert answer["error"] == "invalid_submission_id", bad
        assert "found" not in answer


def test_the_health_operation_answers_the_health_body_without_http(health_env: dict[str, str]) -> None:
    answer = ask(health_env, {"operation": "health"})
    assert answer["operation"] == "health"
    assert answer["status"] in ("ok", "degraded")
    assert {"ledger", "stream", "queue"} <= set(answer["checks"])
    assert "statusCode" not in answer


def test_an_unknown_operation_lists_the_known_ones(health_env: dict[str, str]) -> None:
    answer = ask(health_env, {"operation": "drop_everything"})
    assert answer["error"] == "unknown_operation"
    assert "health" in answer["message"]
    assert "submission" in answer["message"]


def test_a_ledger_that_is_down_is_an_answer_without_its_address(
    health_env: dict[str, str], stopped_database_url: str
) -> None:
    answer = ask(health_env, {"operation": "submission", "submission_id": str(uuid.uuid4())}, stopped_database_url)
    assert answer["error"] == "ledger_unavailable"
    assert "127.0.0.1" not in json.dumps(answer)
    assert "not-a-secret" not in json.dumps(answer)


def url_requests_carrying_an_operation(submission_id: str) -> Iterator[dict[str, Any]]:
    """Function URL events whose every caller-controlled part asks for an operation, and one whose top level
    does too (the URL service never builds that, but its request context still marks it as a request)."""
    operation = {"operation": "submission", "submission_id": submission_id}
    document = json.dumps(operation).encode()
    with_body = function_url_event("POST", "/health")
    with_body.update(body=base64.b64encode(document).decode(), isBase64Encoded=True)
    yield with_body
    plain_body = function_url_event("GET", "/health")
    plain_body.update(body=document.decode(), isBase64Encoded=False)
    yield plain_body
    with_query = function_url_event("GET", "/health")
    with_query.update(rawQueryString=f"operation=submission&submission_id={submission_id}")
    with_query["queryStringParameters"] = dict(operation)
    yield with_query
    with_headers = function_url_event("GET", "/health")
    with_headers["headers"] = {**with_headers["headers"], **operation}
    yield with_headers
    yield function_url_event("GET", "/submission")
    yield {**function_url_event("GET", "/health"), **operation}


def test_no_operation_is_reachable_through_the_function_url(health_env: dict[str, str]) -> None:
    submission_id, device_id = record(health_env["DATABASE_URL"], events=1, published=1)
    for event in url_requests_carrying_an_operation(submission_id):
        answer = ask(health_env, event)
        assert "statusCode" in answer, event  # an HTTP answer: the health check, a 404 or a 405
        text = json.dumps(answer)
        assert device_id not in text
        assert "published_count" not in text
        assert "content_sha256" not in text


def test_the_deployed_entry_point_routes_the_same_way(
    health_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lambda_handler`` as Lambda calls it: the environment, the cached dependencies, both kinds of event."""
    for name, value in health_env.items():
        monkeypatch.setenv(name, value)
    default_dependencies.cache_clear()
    operations.default_lookup.cache_clear()
    submission_id, device_id = record(health_env["DATABASE_URL"], events=2, published=1)
    try:
        context = LambdaContext(10_000, function_name="telemetry-adapter-dev-health")
        direct = health_handler.lambda_handler({"operation": "submission", "submission_id": submission_id}, context)
        assert (direct["found"], direct["ledger"]["device_id"]) == (True, device_id)
        assert health_handler.lambda_handler({"operation": "health"}, context)["status"] in ("ok", "degraded")
        for event in url_requests_carrying_an_operation(submission_id):
            answer = health_handler.lambda_handler(event, context)
            assert "statusCode" in answer
            assert device_id not in json.dumps(answer)
    finally:
        default_dependencies.cache_clear()
        operations.default_lookup.cache_clear()


def test_without_a_ledger_the_lookup_says_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "DB_HOST", "DB_NAME", "DB_USER"):
        monkeypatch.delenv(name, raising=False)
    operations.default_lookup.cache_clear()
    try:
        answer = operations.answer(
            {"operation": "submission", "submission_id": str(uuid.uuid4())}, health=lambda: {"status": "ok"}
        )
    finally:
        operations.default_lookup.cache_clear()
    assert answer["error"] == "not_configured"
    assert "DATABASE_URL" in answer["message"]
