"""Every tool that starts an embedded PostgreSQL stops it, and deletes its data directory, on every way out.

Each tool runs briefly as a user would start it, with no database named (so it starts its own
embedded server) and a private ``TMPDIR`` (so only what this run started is looked at): to the end,
interrupted by Ctrl-C (SIGINT to the process group) or SIGTERM once its server is up, or killed
outright (SIGKILL). After a normal end or an interruption nothing may be left the moment the tool
has exited; after SIGKILL the watchdog must have cleaned up within a bounded wait.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.embedded_postgres import EmbeddedPostgres
from tests.tools.processes import (
    PYTHON,
    ROOT,
    data_directories,
    describe,
    interrupt,
    postmasters_of,
    private_tmp,
    processes_of,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

SERVER_UP_SECONDS = 90
EXIT_SECONDS = 120
WATCHDOG_SECONDS = 30
LEDGER_TESTS = "tests/integration/test_ledger.py"


@pytest.fixture
def tmp() -> Iterator[Path]:
    with private_tmp() as folder:
        yield folder


def assert_nothing_left(tmp: Path) -> None:
    left = processes_of(tmp)
    assert describe(left) == [], "processes of the run are still there"
    assert data_directories(tmp) == [], "the embedded server's data directory is still there"


def tracked_files() -> dict[str, tuple[int, int]]:
    """Modification time and size of every file under version control."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    state = {}
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            info = path.stat()
            state[name] = (info.st_mtime_ns, info.st_size)
    return state


def finish(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return process.wait(EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the tool did not exit:\n{log.read_text(errors='replace')[-3000:]}")


def make(tmp: Path, *arguments: str) -> list[str]:
    return ["make", "--no-print-directory", "-C", str(ROOT), *arguments]


def bench_arguments(tmp: Path) -> str:
    return (
        "--network loopback --sizes 5 --repeats 1 --large-repeats 1 --cpu-submissions 10 --cold-repeats 1"
        f" --memory-messages 10 --json {tmp}/bench.json --chart {tmp}/bench.png"
    )


RUNS_TO_THE_END = {
    "run": lambda tmp: make(tmp, "run", f"ARGS=--duration 1 --devices 2 --drain-timeout 20 --summary {tmp}/s.json"),
    "chaos": lambda tmp: make(
        tmp,
        "chaos",
        f"ARGS=--duration 3 --fuzz-seconds 1 --heartbeat 1 --no-timed-check"
        f" --output {tmp}/chaos.json --log {tmp}/chaos.log",
    ),
    "invoke": lambda tmp: make(tmp, "invoke", "EVENT=events/valid.json"),
    "test": lambda tmp: make(tmp, "test", f"ARGS={LEDGER_TESTS} -q -p no:cacheprovider"),
    "bench": lambda tmp: make(tmp, "bench", f"ARGS={bench_arguments(tmp)}"),
}


@pytest.mark.parametrize("tool", sorted(RUNS_TO_THE_END))
@pytest.mark.timeout(300)
def test_a_tool_that_runs_to_the_end_leaves_no_server(tool: str, tmp: Path) -> None:
    log = tmp / "tool.log"
    before = tracked_files()
    process = start(RUNS_TO_THE_END[tool](tmp), tmp, log)
    code = finish(process, log)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert_nothing_left(tmp)
    assert tracked_files() == before, "a run rewrote a file under version control"
    if tool == "chaos":  # it said where it was while it ran
        assert "violations so far 0" in log.read_text()


@pytest.mark.timeout(300)
def test_a_tool_that_fails_leaves_no_server(tmp: Path) -> None:
    broken = tmp / "broken-event.json"
    broken.write_text('{"Records": "not a list of records"}')
    log = tmp / "tool.log"
    process = start(make(tmp, "invoke", f"EVENT={broken}"), tmp, log)
    assert finish(process, log) != 0, "the handler failed on that event"
    assert "errorType" in log.read_text()
    assert_nothing_left(tmp)


INTERRUPTIBLE = {
    "run": [PYTHON, "-m", "local_stack"],
    "chaos": [PYTHON, "-m", "chaos", "--duration", "600", "--fuzz-seconds", "600"],
    "test": [PYTHON, "-m", "pytest", LEDGER_TESTS, "-q", "-p", "no:cacheprovider"],
}
INTERRUPTIONS = [
    ("run", signal.SIGINT),
    ("run", signal.SIGTERM),
    ("chaos", signal.SIGINT),
    ("chaos", signal.SIGTERM),
    ("test", signal.SIGINT),
]
KILLS = [("run", signal.SIGKILL), ("test", signal.SIGKILL), ("test", signal.SIGTERM), ("chaos", signal.SIGKILL)]
"""Ways out the tool cannot act on: SIGKILL, and SIGTERM for pytest, which does not handle it (chaos: its
fuzzer and workers go too)."""


def started_with_server(command: list[str], tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp / "tool.log"
    process = start(command, tmp, log)
    up = wait_until(lambda: postmasters_of(tmp) or process.poll() is not None, SERVER_UP_SECONDS)
    if not up or process.poll() is not None:
        process.kill()
        pytest.fail(f"no embedded server came up:\n{log.read_text(errors='replace')[-3000:]}")
    return process, log


@pytest.mark.parametrize(("tool", "signum"), INTERRUPTIONS, ids=[f"{t}-{s.name}" for t, s in INTERRUPTIONS])
@pytest.mark.timeout(300)
def test_an_interrupted_tool_stops_its_server_before_it_exits(tool: str, signum: signal.Signals, tmp: Path) -> None:
    command = [*INTERRUPTIBLE[tool]]
    if tool == "chaos":
        command += ["--output", str(tmp / "chaos.json"), "--log", str(tmp / "chaos.log")]
    process, log = started_with_server(command, tmp)
    interrupt(process, signum)
    finish(process, log)
    assert_nothing_left(tmp)
    if tool == "chaos":  # what was measured so far is kept
        document = json.loads((tmp / "chaos.json").read_text())
        assert document["interrupted"] is True


@pytest.mark.parametrize(("tool", "signum"), KILLS, ids=[f"{t}-{s.name}" for t, s in KILLS])
@pytest.mark.timeout(300)
def test_a_killed_tool_does_not_leave_its_server_running(tool: str, signum: signal.Signals, tmp: Path) -> None:
    command = [*INTERRUPTIBLE[tool]]
    if tool == "chaos":  # its fuzzer's command line names the run's folder
        command += ["--output", str(tmp / "chaos.json"), "--log", str(tmp / "chaos.log")]
    process, _ = started_with_server(command, tmp)
    if tool == "chaos":
        assert wait_until(lambda: any("chaos.fuzz_decoder" in " ".join(p.cmdline()) for p in processes_of(tmp)), 60)
    interrupt(process, signum)
    process.wait(EXIT_SECONDS)
    assert wait_until(lambda: not processes_of(tmp) and not data_directories(tmp), WATCHDOG_SECONDS), (
        describe(processes_of(tmp)),
        data_directories(tmp),
    )


@pytest.mark.timeout(120)
def test_close_stops_the_server_a_restart_started(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    server = EmbeddedPostgres()
    server.start()
    try:
        first = postmasters_of(tmp)
        assert len(first) == 1
        assert server.restart(0.1) is True
        second = postmasters_of(tmp)
        assert len(second) == 1
        assert second[0].pid != first[0].pid, "a real restart: a new postmaster"
    finally:
        server.close()
    assert_nothing_left(tmp)


@pytest.mark.timeout(120)
def test_a_restart_in_flight_when_the_server_closes_does_not_start_it_again(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)
    server = EmbeddedPostgres()
    server.start()
    outcome: list[bool] = []
    restart = threading.Thread(target=lambda: outcome.append(server.restart(600)))
    try:
        restart.start()
        assert wait_until(lambda: not postmasters_of(tmp), 60), "the restart stopped the server"
    finally:
        server.close()
    restart.join(30)
    assert outcome == [False]
    assert_nothing_left(tmp)
