"""The embedded PostgreSQL at the edges: a temporary directory with shell-hostile characters in its path,
binaries under a folder only the tool's user may enter, runs whose tool and watchdog both vanished, a
tool killed while ``initdb`` or the server's start-up runs, a server that hangs at teardown, and the
tests' own tools dying with the test process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devkit import embedded_postgres
from devkit.embedded_postgres import EmbeddedPostgres
from devkit.postgres import connect
from tests.tools.processes import (
    PYTHON,
    ROOT,
    data_directories,
    describe,
    postmasters_of,
    private_tmp,
    processes_of,
    wait_until,
)

pytestmark = pytest.mark.slow

UP_SECONDS = 90
WATCHDOG_SECONDS = 30
TOOL = """
import sys, time
from devkit.embedded_postgres import EmbeddedPostgres
server = EmbeddedPostgres()
server.start()
print(server.home, flush=True)
time.sleep(600)
"""


@pytest.fixture
def tmp() -> Iterator[Path]:
    with private_tmp() as folder:
        yield folder


def use_tmpdir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR


def nothing_left(folder: Path) -> bool:
    return not processes_of(folder) and not data_directories(folder)


def start_tool(tmp: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A tool that starts an embedded server and then just waits (stdout: the run's folder)."""
    environment = {**os.environ, "TMPDIR": str(tmp), **(env or {})}
    environment.pop("TEST_DATABASE_URL", None)
    return subprocess.Popen(
        [PYTHON, "-c", TOOL],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def program_running(folder: Path, name: str) -> list[psutil.Process]:
    """``initdb``, or the server (``postgres -D``, not initdb's own ``postgres --boot``), of the run."""
    if name == "postgres":
        return postmasters_of(folder)
    found = []
    for process in processes_of(folder):
        try:
            command = process.cmdline()
        except psutil.Error:
            continue
        if command and Path(command[0]).name == name:
            found.append(process)
    return found


def stop_group(pid: int) -> None:
    """Freeze a process group (a slow or hung program, as the machine sees it)."""
    os.killpg(os.getpgid(pid), signal.SIGSTOP)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["with space", "with $HOME and `x`", "with \"quotes\" and 'q'"])
def test_a_temporary_directory_with_shell_characters_works(
    name: str, tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp / name
    folder.mkdir(mode=0o711)
    use_tmpdir(monkeypatch, folder)
    for port in (None, 0):
        with EmbeddedPostgres(tcp_port=port) as server:
            connection = connect(server.url)
            try:
                assert connection.run("SELECT 1") == [[1]]
            finally:
                connection.close()
            assert server.restart(0) is True
    assert nothing_left(tmp)


@pytest.mark.timeout(180)
def test_binaries_under_a_folder_only_the_tool_user_enters_work_and_no_mode_changes(tmp: Path) -> None:
    """pip under /root: as root the server runs as an unprivileged user, which cannot reach /root; the
    tool then uses a copy in its own folder. No folder of the user's changes mode (TMPDIR is 0700)."""
    private = tmp / "private"
    private.mkdir(mode=0o700)
    installed = embedded_postgres._binaries().parent
    for entry in installed.parent.glob("pgserver*"):  # the package and its bundled libraries, as pip laid them
        (private / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    tmpdir = tmp / "tmp"
    tmpdir.mkdir(mode=0o700)
    modes = {path: path.stat().st_mode for path in (tmp, private, tmpdir)}
    code = (
        "from devkit.embedded_postgres import EmbeddedPostgres\n"
        "from devkit.postgres import connect\n"
        "with EmbeddedPostgres() as server:\n"
        "    connection = connect(server.url)\n"
        "    print(connection.run('SELECT 1'))\n"
        "    connection.close()\n"
    )
    environment = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(private)}
    result = subprocess.run(
        [PYTHON, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[[1]]" in result.stdout
    assert {path: path.stat().st_mode for path in modes} == modes, "a folder of the user's changed mode"
    assert nothing_left(tmp)


@pytest.mark.timeout(240)
def test_a_run_whose_tool_and_watchdog_are_gone_is_swept_by_the_next(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = start_tool(tmp)
    assert tool.stdout is not None
    home = Path(tool.stdout.readline().strip())
    owner = json.loads((home / embedded_postgres.MARKER).read_text())
    assert owner["kind"] == embedded_postgres.MARKER_KIND
    assert owner["pid"] == tool.pid
    os.kill(owner["watchdog"], signal.SIGKILL)  # everything killed at once: nobody left to clean up
    os.kill(tool.pid, signal.SIGKILL)
    tool.wait(30)
    assert postmasters_of(home), "the server outlived its tool and watchdog"
    foreign = tmp / "ta-pg-foreign"  # another program's folder: no marker
    foreign.mkdir()
    alive = tmp / "ta-pg-alive"  # a run whose tool still lives (this test)
    alive.mkdir(mode=0o700)
    living = {**owner, "pid": os.getpid(), "started": _started(os.getpid())}
    (alive / embedded_postgres.MARKER).write_text(json.dumps(living))
    use_tmpdir(monkeypatch, tmp)
    with EmbeddedPostgres():
        assert not home.exists()
        assert not postmasters_of(home)
        assert foreign.is_dir()
        assert alive.is_dir()
    foreign.rmdir()
    (alive / embedded_postgres.MARKER).unlink()
    alive.rmdir()
    assert nothing_left(tmp), (describe(processes_of(tmp)), data_directories(tmp))


def _started(pid: int) -> str | None:
    return embedded_postgres._process_start(pid)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("program", ["initdb", "postgres"])
def test_a_tool_killed_while_the_server_is_made_leaves_nothing(program: str, tmp: Path) -> None:
    """The tool SIGKILLed while ``initdb`` (or the server's start-up) runs, frozen there: the watchdog
    kills what is still running before it removes the folder, so nothing writes into it or starts later."""
    tool = start_tool(tmp)
    try:
        seen = wait_until(lambda: program_running(tmp, program) or tool.poll() is not None, UP_SECONDS)
        assert seen
        assert tool.poll() is None, tool.stderr.read() if tool.stderr else ""
        for process in program_running(tmp, program)[:1]:
            stop_group(process.pid)
        os.kill(tool.pid, signal.SIGKILL)
        tool.wait(30)
    finally:
        if tool.poll() is None:
            tool.kill()
    assert wait_until(lambda: nothing_left(tmp), WATCHDOG_SECONDS), (describe(processes_of(tmp)), data_directories(tmp))


@pytest.mark.timeout(240)
def test_a_hung_server_does_not_hold_the_teardown_up(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_tmpdir(monkeypatch, tmp)
    server = EmbeddedPostgres()
    server.start()
    try:
        (postmaster,) = postmasters_of(tmp)
        members = [postmaster, *postmaster.children()]  # once the postmaster is gone, no path names them
        stop_group(postmaster.pid)  # the postmaster and every backend stop answering
    finally:
        server.close()
    assert [member.pid for member in members if alive(member)] == []
    assert nothing_left(tmp), (describe(processes_of(tmp)), data_directories(tmp))


def alive(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


@pytest.mark.timeout(120)
def test_a_tool_a_test_started_dies_with_the_test_process(tmp: Path) -> None:
    """A test process killed outright (a CI timeout) takes the tools it started with it."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.tools.processes import PYTHON, start\n"
        "tmp = Path(sys.argv[1])\n"
        "tool = start([PYTHON, '-c', 'import time; time.sleep(600)', str(tmp)], tmp, tmp / 'tool.log')\n"
        "print(tool.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    test_process = subprocess.Popen(
        [PYTHON, "-c", code, str(tmp)], cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert test_process.stdout is not None
    tool = int(test_process.stdout.readline())
    os.kill(test_process.pid, signal.SIGKILL)
    test_process.wait(30)
    assert wait_until(lambda: not psutil.pid_exists(tool) or psutil.Process(tool).status() == "zombie", 60)
