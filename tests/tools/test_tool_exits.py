"""How ``make run``, ``make chaos`` and ``make bench`` end when things go wrong around them.

An expected failure (a database that cannot be reached, a fixed port taken) is one line and exit
status 2, the traceback only with ``--debug``. A terminal that goes away (SIGHUP; ``EIO`` once a
terminal is closed; ``EPIPE`` under ``| head -1``) stops the tool as SIGTERM does: no traceback,
exit status 129, and nothing left behind (servers, fuzzer, data directory).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tools.processes import (
    PYTHON,
    data_directories,
    describe,
    postmasters_of,
    private_tmp,
    processes_of,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

EXIT_SECONDS = 120
SERVER_UP_SECONDS = 90
HANGUP_EXIT = 129
CONFIGURATION_EXIT = 2


@pytest.fixture
def tmp() -> Iterator[Path]:
    with private_tmp() as folder:
        yield folder


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield int(holder.getsockname()[1])


def run_command(tmp: Path, *flags: str) -> list[str]:
    files = ["--log-file", f"{tmp}/run.log", "--summary", f"{tmp}/s.json", "--stack-file", f"{tmp}/stack.json"]
    return [PYTHON, "-m", "local_stack", *files, *flags]


def chaos_command(tmp: Path, *flags: str) -> list[str]:
    files = ["--output", f"{tmp}/chaos.json", "--log", f"{tmp}/chaos.log", "--no-timed-check"]
    return [PYTHON, "-m", "chaos", *files, *flags]


def bench_command(tmp: Path, *flags: str) -> list[str]:
    files = ["--json", f"{tmp}/bench.json", "--chart", f"{tmp}/bench.png"]
    return [PYTHON, "-m", "bench", "--network", "loopback", *files, *flags]


def finish(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return process.wait(EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the tool did not exit:\n{log.read_text(errors='replace')[-3000:]}")


def assert_nothing_left(tmp: Path) -> None:
    assert describe(processes_of(tmp)) == [], "processes of the run are still there"
    assert data_directories(tmp) == [], "the embedded server's data directory is still there"


def assert_clean_stop(code: int, log: Path, tmp: Path) -> None:
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert "Exception ignored" not in text, text[-3000:]
    assert code == HANGUP_EXIT, text[-3000:]
    assert_nothing_left(tmp)


# 13: expected failures in one line.


Failure = tuple[list[str], dict[str, str], str]
"""The command, the variables it runs with, and how its last line starts."""
FAILURES: dict[str, Callable[[Path], Failure]] = {
    "run-database": lambda tmp: (
        run_command(tmp, "--duration", "1", "--database-url", f"postgresql://x@127.0.0.1:{closed_port()}/db"),
        {},
        "run: database error: ",
    ),
    "chaos-database": lambda tmp: (
        chaos_command(tmp, "--duration", "1", "--fuzz-seconds", "1"),
        {"TEST_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"},
        "chaos: database error: ",
    ),
    "bench-database": lambda tmp: (
        bench_command(tmp, "--quick"),
        {"TEST_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"},
        "bench: database error: ",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.timeout(180)
def test_an_unreachable_database_is_one_line_and_status_2(case: str, debug: bool, tmp: Path) -> None:
    command, environment, said = FAILURES[case](tmp)
    log = tmp / "tool.log"
    process = start([*command, *(["--debug"] if debug else [])], tmp, log, environment=environment)
    code = finish(process, log)
    text = log.read_text(errors="replace")
    assert code == CONFIGURATION_EXIT, text[-3000:]
    assert text.strip().splitlines()[-1].startswith(said), text[-3000:]
    assert ("Traceback" in text) is debug, text[-3000:]
    assert_nothing_left(tmp)


@pytest.mark.timeout(120)
def test_a_fixed_port_taken_is_one_line_and_status_2(tmp: Path) -> None:
    log = tmp / "tool.log"
    with taken_port() as port:
        process = start(run_command(tmp, "--duration", "1", "--aws-port", str(port)), tmp, log)
        code = finish(process, log)
    text = log.read_text(errors="replace")
    assert code == CONFIGURATION_EXIT, text[-3000:]
    assert (
        text.strip()
        .splitlines()[-1]
        .startswith(f"run: configuration error: the AWS endpoint cannot listen on 127.0.0.1:{port}")
    )
    assert "Traceback" not in text
    assert_nothing_left(tmp)


# 5: SIGHUP, and an output that goes away.

LONG_RUNS: dict[str, Callable[[Path], list[str]]] = {
    "run": run_command,
    "chaos": lambda tmp: chaos_command(tmp, "--duration", "600", "--fuzz-seconds", "600", "--heartbeat", "1"),
    "bench": bench_command,
}


def started_with_server(command: list[str], tmp: Path, log: Path, **options: object) -> subprocess.Popen[bytes]:
    process = start(command, tmp, log, **options)  # type: ignore[arg-type]
    up = wait_until(lambda: postmasters_of(tmp) or process.poll() is not None, SERVER_UP_SECONDS)
    if not up or process.poll() is not None:
        process.kill()
        pytest.fail(f"no embedded server came up:\n{log.read_text(errors='replace')[-3000:]}")
    return process


@pytest.mark.parametrize("tool", sorted(LONG_RUNS))
@pytest.mark.timeout(300)
def test_sighup_stops_the_tool_cleanly(tool: str, tmp: Path) -> None:
    log = tmp / "tool.log"
    process = started_with_server(LONG_RUNS[tool](tmp), tmp, log)
    process.send_signal(signal.SIGHUP)
    assert_clean_stop(finish(process, log), log, tmp)


def read_a_line(stream: int) -> bytes:
    """Bytes from ``stream`` up to the first newline (bounded: the tool says something at once)."""
    seen = b""
    for _ in range(10_000):
        chunk = os.read(stream, 1)
        if not chunk:
            break
        seen += chunk
        if chunk == b"\n":
            break
    return seen


@pytest.mark.parametrize("tool", ["run", "chaos"])
@pytest.mark.timeout(300)
def test_a_reader_that_goes_away_stops_the_tool_cleanly(tool: str, tmp: Path) -> None:
    """``make run | head -1``: the next write after ``head`` exits fails with EPIPE."""
    log = tmp / "tool.log"
    process = started_with_server(LONG_RUNS[tool](tmp), tmp, log, stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert read_a_line(process.stdout.fileno()).endswith(b"\n")
    process.stdout.close()
    assert_clean_stop(finish(process, log), log, tmp)


@pytest.mark.timeout(300)
def test_a_closed_terminal_stops_the_run_cleanly(tmp: Path) -> None:
    """A terminal window closed (and no SIGHUP reaching the tool): every write to it fails with EIO."""
    log = tmp / "tool.log"
    controller, terminal = os.openpty()
    try:
        process = started_with_server(LONG_RUNS["run"](tmp), tmp, log, stdout=terminal)
    finally:
        os.close(terminal)
    try:
        assert read_a_line(controller).endswith(b"\n")
    finally:
        os.close(controller)
    assert_clean_stop(finish(process, log), log, tmp)


@pytest.mark.timeout(300)
def test_bench_with_its_output_gone_stops_cleanly(tmp: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: the first line of the tables fails with EPIPE
    log = tmp / "tool.log"
    tiny = ["--sizes", "5", "--repeats", "1", "--large-repeats", "1", "--cpu-submissions", "10"]
    tiny += ["--cold-repeats", "1", "--memory-messages", "10"]
    try:
        process = start(bench_command(tmp, *tiny), tmp, log, stdout=write_end)
    finally:
        os.close(write_end)
    assert_clean_stop(finish(process, log), log, tmp)
