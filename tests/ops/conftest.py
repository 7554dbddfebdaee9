"""The operators' tool against a local stack: moto on loopback, PostgreSQL, the health endpoint over HTTP,
and the stack file ``make run`` writes, so ``--local`` finds it exactly as it finds a running run."""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit import fleet
from devkit.postgres import fresh_database, server_url_from_env
from local_stack.health_server import HealthServer
from local_stack.options import Options
from local_stack.output import output_to_log
from local_stack.services import Stack, aws_client, local_services
from local_stack.session import stack_file
from local_stack.stack_file import published
from ops.cli import main


@dataclass(frozen=True)
class LocalStack:
    """A running local stack and the file that names it."""

    stack: Stack
    stack_file: Path
    health_url: str

    @property
    def queue_url(self) -> str:
        return self.stack.resources.queue_url

    @property
    def dlq_url(self) -> str:
        return self.stack.resources.dlq_url

    @property
    def bucket(self) -> str:
        return self.stack.resources.quarantine_bucket

    def client(self, service: str) -> Any:
        return aws_client(service)


@dataclass(frozen=True)
class Outcome:
    """What one run of the tool did."""

    status: int
    out: str
    err: str


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalStack]:
    """A local stack (fresh database on TEST_DATABASE_URL's server, or an embedded one) with its stack file."""
    with contextlib.ExitStack() as stack:
        server = server_url_from_env()
        database = stack.enter_context(fresh_database(server, migrate=False)) if server else None
        options = Options(
            visibility_timeout=30,
            function_timeout=5,
            max_receive_count=1,
            log_file=tmp_path / "run.log",
            stack_file=tmp_path / "local-stack.json",
            database_url=database,
        )
        stack.enter_context(output_to_log(options.log_file))
        services = stack.enter_context(local_services(options))
        health = HealthServer(0)
        health.start()
        stack.callback(health.stop)
        stack.enter_context(published(options.stack_file, stack_file(services, health.url)))
        yield LocalStack(services, options.stack_file, health.url)


@pytest.fixture
def run_ops(local: LocalStack, capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Run ``python -m ops <args> --local --stack-file <the fixture's>`` in process."""

    def run(*args: str, target: tuple[str, ...] | None = None) -> Outcome:
        chosen = ("--local", "--stack-file", str(local.stack_file)) if target is None else target
        out = io.StringIO()
        capsys.readouterr()
        status = main([*args, *chosen], out=out)
        return Outcome(status, out.getvalue(), capsys.readouterr().err)

    return run


def valid_document(seed: int, events: int = 2) -> dict[str, Any]:
    """A valid submission with ``events`` events (``events`` new processes, no connections)."""
    rng = random.Random(seed)
    return fleet.submission(rng, fleet.device_ids(1, seed)[0], processes=events, connections=0)
