"""The commands say what they do: ``make`` lists every target, and every documented ``--help`` works
from the repository root with the virtual environment's Python and nothing exported."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.tools.processes import PYTHON, ROOT, tool_environment

_RULE = re.compile(r"^([a-z][a-z-]*)(?:\s+[a-z][a-z-]*)*\s*:(?!=)", re.MULTILINE)


def makefile_targets() -> set[str]:
    """Every target a rule of the Makefile defines (not files, not pattern or variable lines)."""
    text = (ROOT / "Makefile").read_text()
    targets: set[str] = set()
    for line in text.splitlines():
        match = _RULE.match(line)
        if match and not line.startswith(("\t", "#")):
            targets.update(name for name in line.split(":", 1)[0].split() if "$" not in name)
    return targets


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = tool_environment(Path(tempfile.gettempdir()))
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_make_alone_lists_every_target_on_one_line_each() -> None:
    result = run(["make", "--no-print-directory"])
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    targets = makefile_targets()
    assert {"help", "run", "test", "lint", "bench", "chaos", "invoke", "synth", "deploy"} <= targets
    assert sorted(listed) == sorted(targets), "each target listed exactly once"
    assert "ARGS" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        [PYTHON, "-m", "local_stack", "--help"],
        [PYTHON, "-m", "local_stack.invoke", "--help"],
        [PYTHON, "-m", "chaos", "--help"],
        [PYTHON, "-m", "bench", "--help"],
        [PYTHON, "-m", "ops", "--help"],
        [PYTHON, "-m", "telemetry_adapter.ledger.migrate", "--help"],
        ["make", "--no-print-directory", "migrate", "ARGS=--help"],
        ["make", "--no-print-directory", "ops", "ARGS=--help"],
        ["make", "--no-print-directory", "bench", "ARGS=--help"],
        ["make", "--no-print-directory", "run", "ARGS=--help"],
        ["make", "--no-print-directory", "chaos", "ARGS=--help"],
        ["make", "--no-print-directory", "invoke", "ARGS=--help"],
    ],
    ids=lambda command: " ".join(part.rsplit("/", 1)[-1] for part in command),
)
def test_documented_help_works_from_the_repository_root(command: list[str]) -> None:
    result = run(command)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert "Error" not in result.stderr


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ["-m", "local_stack", "--devices", "0"],
            "argument --devices: expected a whole number from 1 to 10,000, got '0'",
        ),
        (["-m", "local_stack", "--broken-rate", "nan"], "argument --broken-rate: expected a number from 0 to 1"),
        (["-m", "local_stack", "--duration", "soon"], "argument --duration: expected a number from 0 to"),
        (["-m", "local_stack", "--aws-port", "70000"], "expected a whole number from 0 to 65,535 (0 = any free port)"),
        (["-m", "local_stack", "--database-url", "mysql://x@y/z"], "argument --database-url: the URL must start"),
        (["-m", "chaos", "--duration", "0"], "argument --duration: expected a number from 1 to"),
        (["-m", "chaos", "--fuzz-seconds", "1.5"], "argument --fuzz-seconds: expected a whole number from 1 to"),
        (["-m", "chaos", "--rate-scale", "-1"], "argument --rate-scale: expected a number from 0 to 100"),
        (["-m", "local_stack.invoke", "--timeout", "1e400"], "argument --timeout: expected a number from 1 to 900"),
    ],
)
def test_out_of_range_flags_are_refused_at_parse_time_in_words(command: list[str], expected: str) -> None:
    result = run([PYTHON, *command])
    assert result.returncode == 2
    assert expected in result.stderr
    assert "_positive" not in result.stderr
    assert "invalid" not in result.stderr
    assert "Traceback" not in result.stderr
