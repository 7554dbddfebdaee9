"""The commands say what they do: ``make`` lists every target, and every documented ``--help`` works
from the repository root with the virtual environment's Python and nothing exported."""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

import local_stack.invoke as local_stack_invoke
import local_stack.options as local_stack_options
from bench import cli as bench_cli
from chaos import __main__ as chaos_main
from devkit.cli_flags import RANGE
from ops import cli as ops_cli
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


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every tool's parser, and each of the operators' tool's verbs."""
    found = {
        "local_stack": local_stack_options.build_parser(),
        "local_stack.invoke": local_stack_invoke.build_parser(),
        "chaos": chaos_main.build_parser(),
        "bench": bench_cli._parser(),
    }
    pending = [("ops", ops_cli.build_parser())]
    while pending:
        name, parser = pending.pop()
        found[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend((f"{name} {verb}", sub) for verb, sub in action.choices.items())
    return found


def _entries(help_text: str) -> dict[str, str]:
    """Each option's help entry, by its first flag, its wrapped lines joined."""
    entries: dict[str, str] = {}
    current = ""
    for line in help_text.splitlines():
        flag = re.match(r"^  (-[-\w]+)", line)
        if flag:
            current = flag.group(1)
            entries[current] = line.strip()
        elif current and line.startswith("    "):
            entries[current] += " " + line.strip()
        else:
            current = ""
    return {flag: re.sub(r"\s+", " ", text) for flag, text in entries.items()}


@pytest.mark.parametrize("tool", sorted(_parsers()))
def test_help_shows_each_range_once_and_each_default_once(tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    parser = _parsers()[tool]
    entries = _entries(parser.format_help())
    assert "(default: None)" not in parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        entry = entries[action.option_strings[0]]
        assert entry.count("default:") <= 1, entry
        span = getattr(action.type, RANGE, None)
        if span:
            assert entry.count(span) == 1, f"{tool} {entry!r} should show its range {span!r} once"
        if action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0:
            assert "default: " in entry, f"{tool} {entry!r} should show its default"
    ranged = [action for action in parser._actions if getattr(action.type, RANGE, None)]
    assert ranged or tool in {"ops", "ops dlq", "ops quarantine", "ops quarantine show", "ops submission"}
