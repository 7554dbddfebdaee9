"""``make migrate``: its flags reach it, ``--dry-run`` lists what is pending and applies nothing, and a
database that cannot be reached is said in one line, not a traceback."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.postgres import connect, provisioned_database
from telemetry_adapter.ledger.migrate import main
from telemetry_adapter.ledger.migrations import available_migrations
from tests.tools.processes import ROOT, tool_environment


@pytest.fixture
def empty_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with provisioned_database(migrate=False) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


def applied_versions(url: str) -> list[int]:
    connection = connect(url)
    try:
        if not connection.run("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]:
            return []
        return sorted(row[0] for row in connection.run("SELECT version FROM schema_migrations"))
    finally:
        connection.close()


def test_dry_run_lists_the_pending_migrations_and_applies_none(
    empty_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dry-run"]) == 0
    listed = capsys.readouterr().out
    for migration in available_migrations():
        assert f"{migration.version:04d}_{migration.name}" in listed
    assert applied_versions(empty_database) == []
    assert main([]) == 0
    assert applied_versions(empty_database) == [migration.version for migration in available_migrations()]
    capsys.readouterr()
    assert main(["--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == "schema is up to date"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_make_migrate_passes_args_and_fails_in_one_line_without_a_database() -> None:
    env = tool_environment(Path("/tmp"))
    env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"
    command = ["make", "--no-print-directory", "migrate", "ARGS=--dry-run"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "migrate: database error: " in result.stderr
    with_debug = [*command[:-1], "ARGS=--dry-run --debug"]
    debug = subprocess.run(with_debug, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" in debug.stderr
