"""No secret in the logs: neither the database password nor the RDS IAM auth token (nor the AWS keys
that sign it) appears in anything the processor writes, on success or on the logger.exception paths.

Runs the real entry point, ``processor.handler.lambda_handler`` (Powertools logger and metrics
decorators included), wired from the environment exactly as in Lambda, with the logger at DEBUG.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from devkit import fleet
from devkit.lambda_shapes import LambdaContext, sqs_event
from processor.handler import lambda_handler
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.observability import logger
from telemetry_adapter.runtime import default_pipeline
from tests.conftest import STREAM
from tests.security.tls_server import FakeTlsPostgres, self_signed_certificate

ACCESS_KEY = "AKIACHAOSPROBE7EXAMPLE"
SECRET_KEY = "s3cr3t/AWS+signing+key/that+must+never+show"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Everything the Powertools logger writes, at DEBUG, for the duration of the test."""
    buffer = io.StringIO()
    handler: Any = logger.registered_handler
    stream = handler.setStream(buffer)
    level = logger.log_level
    logger.setLevel("DEBUG")
    default_pipeline.cache_clear()
    monkeypatch.setenv("STREAM_NAME", STREAM)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    yield buffer
    default_pipeline.cache_clear()
    logger.setLevel(level)
    handler.setStream(stream)


@pytest.fixture
def password_url(database_url: str) -> Iterator[tuple[str, str]]:
    """The session database through a role with a password: (url with the password, the password)."""
    role, password = f"ta_probe_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}-'\"%@:/"
    admin = DatabaseSettings.from_url(database_url).connect()
    try:
        admin.run(f"CREATE ROLE {role} LOGIN PASSWORD '{password.replace(chr(39), chr(39) * 2)}'")
        admin.run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON submission_ledger, processor_heartbeat TO {role}")
    finally:
        admin.close()
    parts = urlsplit(database_url)
    netloc = f"{role}:{quote(password, safe='')}@{parts.netloc.rsplit('@', 1)[-1]}"
    yield urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), password
    admin = DatabaseSettings.from_url(database_url).connect()
    try:
        admin.run(f"DROP OWNED BY {role}")
        admin.run(f"DROP ROLE {role}")
    finally:
        admin.close()


def _batch() -> dict[str, Any]:
    rng = random.Random(9)
    device = fleet.device_ids(1)[0]
    bodies = [fleet.encode(fleet.submission(rng, device)) for _ in range(3)]
    return sqs_event([*bodies, fleet.hostile_body("not_json")])


def _assert_clean(output: str, *secrets: str) -> None:
    assert output, "nothing was logged, so nothing was checked"
    for secret in (*secrets, quote(secrets[0], safe=""), ACCESS_KEY, SECRET_KEY):
        assert secret not in output


def test_a_batch_with_a_password_url_logs_no_password(
    captured: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    password_url: tuple[str, str],
    kinesis: Any,
    clean_database: str,
) -> None:
    url, password = password_url
    monkeypatch.setenv("DATABASE_URL", url)
    response = lambda_handler(_batch(), LambdaContext())
    assert response == {"batchItemFailures": []}  # it really ran against the database as that role
    _assert_clean(captured.getvalue() + capsys.readouterr().out, password, url)


def test_an_unreachable_ledger_logs_the_exception_but_no_password(
    captured: io.StringIO, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kinesis: Any
) -> None:
    password = f"Pw-{uuid.uuid4().hex}"
    url = f"postgresql://app:{password}@127.0.0.1:1/ledger"  # nothing listens on port 1
    monkeypatch.setenv("DATABASE_URL", url)
    response = lambda_handler(_batch(), LambdaContext())
    assert len(response["batchItemFailures"]) == 3  # the valid ones, for redelivery
    output = captured.getvalue() + capsys.readouterr().out
    assert "ledger claim failed" in output  # the logger.exception path ran, traceback included
    assert "Traceback" in output or "exception" in output
    _assert_clean(output, password, url)


def test_the_iam_token_path_logs_no_token_when_the_connection_fails(
    captured: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kinesis: Any,
    tmp_path: Path,
) -> None:
    server = FakeTlsPostgres(*self_signed_certificate(tmp_path))
    try:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        for name, value in {
            "DB_HOST": "localhost",
            "DB_PORT": str(server.port),
            "DB_NAME": "l",
            "DB_USER": "app",
        }.items():
            monkeypatch.setenv(name, value)
        response = lambda_handler(_batch(), LambdaContext())
    finally:
        server.close()
    assert len(response["batchItemFailures"]) == 3
    output = captured.getvalue() + capsys.readouterr().out
    assert "ledger claim failed" in output
    # A token is "host:port/?Action=connect&...&X-Amz-Credential=...&X-Amz-Signature=...".
    _assert_clean(output, "X-Amz-Signature", "X-Amz-Credential", "Action=connect")


def test_a_configuration_error_does_not_echo_the_password(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch, kinesis: Any
) -> None:
    password = f"Pw-{uuid.uuid4().hex}"
    for url in (
        f"postgresql://app:{password}@db:5432/l?sslmode=bogus",
        f"postgresql://app:{password}@db:99999/l",
        f"mysql://app:{password}@db/l",
    ):
        default_pipeline.cache_clear()
        monkeypatch.setenv("DATABASE_URL", url)
        with pytest.raises(ConfigurationError) as raised:
            lambda_handler(_batch(), LambdaContext())
        assert password not in str(raised.value)
        assert password not in repr(raised.value.__context__)
    assert password not in captured.getvalue()
