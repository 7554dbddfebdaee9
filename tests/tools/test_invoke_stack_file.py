"""``make invoke`` finds a running ``make run`` by its stack file, not by probing fixed ports: the file
when it is there and alive (its process running; for a file naming none, its endpoints answering),
a stack of its own otherwise, and it says which."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from devkit.kinesis import read_stream
from devkit.postgres import provisioned_database
from local_stack.invoke import stack_for
from local_stack.options import Options
from local_stack.output import output_to_log
from local_stack.services import aws_client, local_services
from local_stack.session import stack_file
from local_stack.stack_file import LocalStackFile, live, write
from telemetry_adapter.config import ConfigurationError
from tests.tools.processes import PYTHON, private_tmp, start

pytestmark = pytest.mark.slow

EXIT_SECONDS = 120


def a_stack_file(**changes: object) -> LocalStackFile:
    closed = closed_port()
    stack = LocalStackFile(
        aws_endpoint=f"http://127.0.0.1:{closed}",
        region="us-east-1",
        queue_url=f"http://127.0.0.1:{closed}/123456789012/submissions",
        dlq_url=f"http://127.0.0.1:{closed}/123456789012/submissions-dlq",
        quarantine_bucket="quarantine",
        stream_name="events",
        database_url=f"postgresql://postgres@127.0.0.1:{closed}/postgres",
        health_url=f"http://127.0.0.1:{closed}/health",
        pid=0,
        started_at="2026-01-01T00:00:00Z",
    )
    return replace(stack, **changes)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dead_pid() -> int:
    process = subprocess.Popen([PYTHON, "-c", "pass"])
    process.wait()
    return process.pid


def test_no_file_a_stale_file_and_a_silent_file_are_not_alive(tmp_path: Path) -> None:
    path = tmp_path / "local-stack.json"
    assert live(path) == (None, f"{path} does not exist: start the local stack with `make run` first")
    write(path, a_stack_file(pid=dead_pid()))
    stack, why = live(path)
    assert stack is None
    assert "is stale" in why
    write(path, a_stack_file())  # names no process, and nothing answers on its endpoints
    stack, why = live(path)
    assert stack is None
    assert "do not answer" in why
    with pytest.raises(ConfigurationError, match="no running `make run`"):
        stack_for("running", path)


def test_a_file_whose_process_runs_or_whose_endpoints_answer_is_alive(tmp_path: Path) -> None:
    path = tmp_path / "local-stack.json"
    write(path, a_stack_file(pid=os.getpid()))
    assert live(path)[0] is not None
    with socket.socket() as aws, socket.socket() as database:
        for listener in (aws, database):
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
        endpoint = f"http://127.0.0.1:{aws.getsockname()[1]}"
        ledger = f"postgresql://postgres@127.0.0.1:{database.getsockname()[1]}/postgres"
        write(path, a_stack_file(aws_endpoint=endpoint, database_url=ledger))
        stack, why = live(path)
    assert stack is not None
    assert "endpoints answer" in why


@pytest.fixture
def tmp() -> Iterator[Path]:
    with private_tmp() as folder:
        yield folder


@pytest.mark.timeout(240)
def test_make_invoke_uses_the_running_stack_its_file_names_and_says_so(tmp: Path) -> None:
    """Any ``make run`` (free ports, not only ``--fixed-ports``): the event's records land in its stream."""
    path = tmp / "local-stack.json"
    with provisioned_database(migrate=False) as url:
        # The function timeout make invoke uses: the tool inherits the variables this stack sets in the test.
        options = Options(log_file=tmp / "run.log", database_url=url, function_timeout=60.0)
        with output_to_log(options.log_file), local_services(options) as stack:
            write(path, stack_file(stack, "http://127.0.0.1:1/health"))
            log = tmp / "invoke.log"
            command = [PYTHON, "-m", "local_stack.invoke", "--event", "events/valid.json", "--stack-file", str(path)]
            with (tmp / "response.json").open("wb") as response:
                process = start(command, tmp, log, stdout=response.fileno())
            code = process.wait(EXIT_SECONDS)
            said = log.read_text(errors="replace")
            answered = (tmp / "response.json").read_text(errors="replace")
            records = read_stream(aws_client("kinesis"), stack.resources.stream_name)
    assert code == 0, answered[-3000:]
    assert said.splitlines()[0].startswith(f"invoking the processor function on the running stack of {path}"), said
    assert records, "the event's records are in the running stack's stream"
