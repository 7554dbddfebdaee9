"""``make run``'s choices said out loud: which database (never an exported ``DATABASE_URL``), which ports
(fixed for ``sam local invoke`` and ``make invoke``, or free), readable summaries, and a worker that
fails like a local run does."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.postgres import provisioned_database
from local_stack.cli import external_database_warning
from local_stack.health_server import HealthServer
from local_stack.options import FIXED_AWS_PORT, FIXED_DB_PORT, FIXED_HEALTH_PORT, Options, parse_options
from local_stack.output import output_to_log
from local_stack.services import local_services
from local_stack.summary import format_summary, worker_summary
from local_stack.tally import Tally
from telemetry_adapter.config import ConfigurationError

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_database_url() -> Iterator[str]:
    """A fresh, empty database (the stack migrates it) on TEST_DATABASE_URL's server, or an embedded one."""
    with provisioned_database(migrate=False) as url:
        yield url


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield int(holder.getsockname()[1])


def test_fixed_ports_are_the_ones_events_env_json_expects() -> None:
    options = parse_options(["--fixed-ports"])
    assert (options.aws_port, options.db_port, options.health_port) == (4566, 15432, 8081)
    assert (FIXED_AWS_PORT, FIXED_DB_PORT, FIXED_HEALTH_PORT) == (4566, 15432, 8081)
    assert parse_options(["--fixed-ports", "--health-port", "0"]).health_port == 0
    default = parse_options([])
    assert (default.aws_port, default.db_port, default.health_port) == (0, 0, 0)
    external = parse_options(["--fixed-ports", "--database-url", "postgresql://u@db.example:5432/ledger"])
    assert external.db_port == 0, "no embedded server to expose"


def test_a_taken_fixed_port_is_a_configuration_error_before_anything_starts(taken_port: int, tmp_path: Path) -> None:
    options = Options(aws_port=taken_port, log_file=tmp_path / "run.log")
    with pytest.raises(ConfigurationError, match=f"127.0.0.1:{taken_port}"), local_services(options):
        pass
    with pytest.raises(ConfigurationError, match="health endpoint"):
        HealthServer(taken_port)


@pytest.mark.timeout(120)
def test_an_exported_database_url_is_never_used_by_a_local_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exported = "postgresql://app:secret@127.0.0.1:1/production"
    monkeypatch.setenv("DATABASE_URL", exported)
    options = Options(log_file=tmp_path / "run.log")
    with output_to_log(options.log_file), local_services(options) as stack:
        assert stack.embedded_database
        assert stack.database_url != exported
        assert stack.database_url is not None
        assert stack.database_url.startswith("postgresql://postgres@127.0.0.1:")


@pytest.mark.timeout(120)
def test_an_explicit_database_url_is_used_and_announced(stack_database_url: str, tmp_path: Path) -> None:
    options = Options(log_file=tmp_path / "run.log", database_url=stack_database_url)
    with output_to_log(options.log_file), local_services(options) as stack:
        assert not stack.embedded_database
        assert stack.database_url == stack_database_url
    warning = external_database_warning("postgresql://app:hunter2@db.example:5432/ledger")
    assert "EXTERNAL DATABASE: postgresql://app:***@db.example:5432/ledger" in warning
    assert "hunter2" not in warning


def test_the_summary_is_text_not_a_python_dict() -> None:
    tally = Tally()
    tally.rejected.update({"invalid_uuid": 3, "not_json": 1})
    tally.add(invocation_errors=2, invocations=5, quarantined=4)
    summary = worker_summary(tally.snapshot())
    text = format_summary(summary)
    assert "{" not in text
    assert "rejected     4: invalid_uuid 3, not_json 1" in text
    assert "quarantine   stored 4, write failures 0" in text
    assert text.startswith("summary (worker run, ")
    assert "FAILED: 2 failed invocations" in text


@pytest.mark.parametrize(
    ("counters", "ok"),
    [({}, True), ({"invocation_errors": 1}, False), ({"poll_errors": 1}, False), ({"ledger_failures": 1}, False)],
)
def test_a_worker_that_could_not_do_its_job_is_not_ok(counters: dict[str, int], ok: bool) -> None:
    tally = Tally()
    tally.add(**counters)
    assert worker_summary(tally.snapshot())["ok"] is ok


def test_a_worker_whose_queue_cannot_be_reached_exits_with_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from local_stack.cli import main

    for name, value in {
        "QUEUE_URL": "http://127.0.0.1:1/123456789012/submissions",
        "STREAM_NAME": "events",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["--worker", "--duration", "1", "--log-file", str(tmp_path / "run.log")]) == 2
    assert "QUEUE_URL http://127.0.0.1:1/123456789012/submissions cannot be reached" in capsys.readouterr().err


def test_worker_mode_takes_its_region_from_aws_region_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Lambda and the docs' example set AWS_REGION; boto3 alone reads only AWS_DEFAULT_REGION."""
    import boto3
    from moto import mock_aws

    from local_stack.services import worker_services

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with mock_aws():
        queue_url = boto3.client("sqs", region_name="eu-west-1").create_queue(QueueName="submissions")["QueueUrl"]
        monkeypatch.setenv("QUEUE_URL", queue_url)
        monkeypatch.setenv("STREAM_NAME", "events")
        monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        with worker_services(Options(worker=True, log_file=tmp_path / "run.log")) as stack:
            assert stack.resources.queue_url == queue_url
