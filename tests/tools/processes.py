"""Finding the processes and folders a tool run left behind, by the private temporary folder it ran with.

Each run under test gets its own ``TMPDIR``: the embedded server's data directory is created in it, so
the postmaster's command line (``postgres -D <TMPDIR>/ta-pg-...``), the watchdog's and the chaos
fuzzer's all name it. The backends carry no path in their rewritten titles, so the children of those
processes count as well. The machine's own PostgreSQL, and other runs, never match.

A tool started here dies with the test: beside it runs a small reaper holding a pipe from the test
process; when the test's folder is cleaned up, or the test process dies however it dies (the pipe
then reaches end-of-file), the reaper interrupts the tool's process group as Ctrl-C would, and kills
it after a bounded wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
_POLL_SECONDS = 0.2
_REAPER = """
import os, signal, sys, time
group, pipe = int(sys.argv[1]), int(sys.argv[2])
for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
    signal.signal(number, signal.SIG_IGN)
while os.read(pipe, 64):
    pass
def alive():
    try:
        os.killpg(group, 0)
    except OSError:
        return False
    return True
if alive():
    os.killpg(group, signal.SIGINT)
    ends = time.monotonic() + 30
    while alive() and time.monotonic() < ends:
        time.sleep(0.1)
    if alive():
        os.killpg(group, signal.SIGKILL)
"""
_reapers: dict[int, int] = {}
"""The write end of each started tool's reaper pipe, by the tool's pid."""


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
    folder.chmod(0o711)  # as root, the embedded server's own user must reach it; this folder is the test's
    try:
        yield folder
    finally:
        release_all()
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


def start(
    command: Sequence[str],
    tmp: Path,
    log: Path,
    *,
    stdout: int | None = None,
    environment: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a tool in its own session (so a signal to its group reaches only it), output to ``log``, with
    a reaper that stops its process group when the test's folder is cleaned up or the test process dies.

    ``stdout`` (a descriptor, or ``subprocess.PIPE``) takes the tool's stdout instead, ``log`` then gets
    its stderr alone; ``environment`` adds variables to :func:`tool_environment`."""
    with log.open("wb") as output:
        tool = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**tool_environment(tmp), **(environment or {})},
            stdin=subprocess.DEVNULL,
            stdout=output if stdout is None else stdout,
            stderr=subprocess.STDOUT if stdout is None else output,
            start_new_session=True,
        )
    read_end, write_end = os.pipe()  # close-on-exec: only the reaper inherits its end
    try:
        subprocess.Popen(
            [PYTHON, "-I", "-c", _REAPER, str(tool.pid), str(read_end)],
            pass_fds=(read_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        os.close(read_end)
    _reapers[tool.pid] = write_end
    return tool


def release_all() -> None:
    """Let every reaper act: the tools still running are interrupted, then killed."""
    while _reapers:
        os.close(_reapers.popitem()[1])


def interrupt(process: subprocess.Popen[bytes], signum: int) -> None:
    """Ctrl-C is SIGINT to the whole foreground group; SIGTERM and SIGKILL go to the process."""
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
