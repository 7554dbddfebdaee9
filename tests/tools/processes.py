"""Finding the processes and folders a tool run left behind, by the private temporary folder it ran with.

Each run under test gets its own ``TMPDIR``: the embedded server's data directory is created in it, so
the postmaster's command line (``postgres -D <TMPDIR>/ta-pg-...``), the watchdog's and the chaos
fuzzer's all name it. The backends carry no path in their rewritten titles, so the children of those
processes count as well. The machine's own PostgreSQL, and other runs, never match.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
_POLL_SECONDS = 0.2


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def processes_of(marker: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``marker``, and their descendants."""
    found: dict[int, psutil.Process] = {}
    needle = str(marker)
    for process in psutil.process_iter(["cmdline"]):
        command = process.info.get("cmdline") or []
        if any(needle in part for part in command) and _alive(process):
            found[process.pid] = process
            with contextlib.suppress(psutil.Error):
                found.update({child.pid: child for child in process.children(recursive=True) if _alive(child)})
    return sorted(found.values(), key=lambda process: process.pid)


def describe(processes: Sequence[psutil.Process]) -> list[str]:
    """``pid: command line`` of each process, for an assertion message."""
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            lines.append(f"{process.pid}: {' '.join(process.cmdline())[:200]}")
    return lines


def data_directories(folder: Path) -> list[str]:
    """Embedded-server data (and socket) directories still in ``folder``."""
    return sorted(entry.name for entry in folder.iterdir() if entry.name.startswith("ta-pg"))


def postmasters_of(marker: Path) -> list[psutil.Process]:
    """The postmasters among :func:`processes_of` (the servers themselves)."""
    result = []
    for process in processes_of(marker):
        with contextlib.suppress(psutil.Error):
            command = process.cmdline()
            if command and Path(command[0]).name == "postgres" and "-D" in command:
                result.append(process)
    return result


def wait_until(condition: object, seconds: float) -> bool:
    """Poll ``condition()`` until it is true or ``seconds`` pass; return its last value."""
    assert callable(condition)
    ends = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= ends:
            return bool(condition())
        time.sleep(_POLL_SECONDS)
    return True


@contextlib.contextmanager
def private_tmp() -> Iterator[Path]:
    """A short private folder for ``TMPDIR`` (Unix socket paths must stay short); cleaned up afterwards,
    killing whatever a failed test left in it so one failure does not leak into the next test."""
    folder = Path(tempfile.mkdtemp(prefix="ta-life-", dir="/tmp"))  # short on purpose
    try:
        yield folder
    finally:
        for process in processes_of(folder):
            with contextlib.suppress(psutil.Error):
                process.kill()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def tool_environment(tmp: Path) -> dict[str, str]:
    """The environment of a tool under test: no database named (so it starts its embedded server), the
    private ``TMPDIR``, and nothing on ``PYTHONPATH`` (the virtual environment finds the project)."""
    hidden = {"TEST_DATABASE_URL", "DATABASE_URL", "RUN_DATABASE_URL", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL"}
    env = {name: value for name, value in os.environ.items() if name not in hidden}
    env["TMPDIR"] = str(tmp)
    return env


def start(command: Sequence[str], tmp: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a tool in its own session (so a signal to its group reaches only it), output to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=tool_environment(tmp),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def interrupt(process: subprocess.Popen[bytes], signum: int) -> None:
    """Ctrl-C is SIGINT to the whole foreground group; SIGTERM and SIGKILL go to the process."""
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)


PYTHON = sys.executable
