"""The tool's command line: ``--help`` for every verb (from the repository root, and through make), flags
refused at parse time in words, and targets that cannot be found said in one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from local_stack.stack_file import LocalStackFile, write
from ops.cli import main, parse
from tests.tools.processes import ROOT, tool_environment

VERBS = [
    ("dlq", "peek"),
    ("dlq", "redrive"),
    ("quarantine", "list"),
    ("quarantine", "show"),
    ("quarantine", "replay"),
    ("submission",),
]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = tool_environment(Path(tempfile.gettempdir()))
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb: tuple[str, ...]) -> None:
    result = run([sys.executable, "-m", "ops", *verb, "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert "--stack NAME" in result.stdout
    assert "--local" in result.stdout


def test_make_ops_lists_the_verbs() -> None:
    result = run(["make", "--no-print-directory", "ops", "ARGS=--help"])
    assert result.returncode == 0, result.stderr
    assert "{dlq,quarantine,submission}" in result.stdout
    listing = run(["make", "--no-print-directory", "help"])
    assert any(line.split()[:1] == ["ops"] for line in listing.stdout.splitlines())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["dlq", "peek", "--limit", "0"], "argument --limit: expected a whole number from 1 to 10,000, got '0'"),
        (["dlq", "redrive", "--rate", "nan"], "argument --rate: expected a number from 0.1 to 1,000, got 'nan'"),
        (["dlq", "redrive", "--rate", "0"], "argument --rate: expected a number from 0.1 to 1,000"),
        (["quarantine", "list", "--since", "yesterday"], "argument --since: expected a time such as 2026-11-29T03:00Z"),
        (["quarantine", "list", "--reason", "bad_vibes"], "argument --reason: expected a reason code (not_base64,"),
        (["quarantine", "list", "--device", "42"], "argument --device: expected a UUID"),
        (["quarantine", "list", "--since", "1d", "--until", "2d"], "--since ("),
        (["quarantine", "list", "--since", "999999d"], "argument --since: 999999d before now is before the year 1"),
        (["quarantine", "list", "--until", "0001-01-01"], "--until (0001-01-01T00:00Z) leaves no room for the default"),
        (["quarantine", "list", "--since", "0001-01-01T00:00+05:00"], "argument --since: expected a time from"),
        (["quarantine", "replay", "--limit", "1e3"], "argument --limit: expected a whole number from 1 to 1,000,000"),
        (["submission", "not-a-uuid"], "argument submission_id: expected a UUID"),
        (["dlq", "peek", "--stack", "X", "--local"], "not allowed with argument"),
    ],
)
def test_bad_flags_are_refused_in_words(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_time_range_defaults_to_the_last_day() -> None:
    args = parse(["quarantine", "list"])
    assert (args.until - args.since).total_seconds() == 24 * 3600
    assert parse(["quarantine", "list", "--since", "2026-11-29"]).since.isoformat() == "2026-11-29T00:00:00+00:00"


def test_local_without_a_running_stack_is_a_target_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "local-stack.json"
    assert main(["dlq", "peek", "--local", "--stack-file", str(missing)]) == 2
    assert "does not exist: start the local stack with `make run` first" in capsys.readouterr().err
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(gone.stdout)
    write(
        missing,
        LocalStackFile(
            aws_endpoint="http://127.0.0.1:9",
            region="us-east-1",
            queue_url="q",
            dlq_url="d",
            quarantine_bucket="b",
            stream_name="s",
            database_url="postgresql://postgres@127.0.0.1:9/postgres",
            health_url="http://127.0.0.1:9/health",
            pid=dead_pid,
            started_at="2026-11-29T03:00:00Z",
        ),
    )
    assert missing.stat().st_mode & 0o777 == 0o600  # it may hold the ledger's password
    assert json.loads(missing.read_text())["pid"] == dead_pid
    assert main(["dlq", "peek", "--local", "--stack-file", str(missing)]) == 2
    assert f"no longer running (process {dead_pid}" in capsys.readouterr().err
    missing.write_text("{not json")
    assert main(["dlq", "peek", "--local", "--stack-file", str(missing)]) == 2
    assert "cannot be read as a local stack file" in capsys.readouterr().err


def test_a_verb_without_what_it_needs_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quarantine", "list", "--queue-url", "http://127.0.0.1:9/q"]) == 2
    err = capsys.readouterr().err
    assert "quarantine list needs --bucket" in err
    assert "QuarantineBucketName" in err
    assert main(["submission", "5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"]) == 2
    assert "needs --health-function" in capsys.readouterr().err
