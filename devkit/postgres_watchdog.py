"""Stops an embedded PostgreSQL and deletes its data directory once the process that started it is gone.

``pg_ctl start`` detaches the server (its own session, parent ``init``), so nothing ties it to the
tool that started it: a tool killed outright (SIGKILL, an out-of-memory kill, a CI job timeout)
would leave a running server behind, with its data directory. This module closes that gap. It runs
as a tiny separate process, started in its own session (so a Ctrl-C at the terminal does not reach
it), and blocks on reading a pipe whose only writer is the tool. The pipe reaches end-of-file when
the tool closes it (a normal stop) or when the tool dies, however it dies; the watchdog then stops
the server (if still running) and removes the directories. It has no state of its own and the work
is idempotent, so after a normal stop it finds nothing to do and exits.

Standard library only, run as a script by path: it starts in a few milliseconds and needs nothing
from the project's import path. :func:`stop_and_remove` is also what the tool itself calls on a
normal stop, so both ways out run the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_STOP_WAIT_SECONDS = 30
_GONE_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.05


def postmaster_pid(pgdata: Path) -> int | None:
    """The server's pid from ``postmaster.pid`` (kept current by PostgreSQL across restarts)."""
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def is_running(pid: int, pgdata: Path) -> bool:
    """Whether ``pid`` is still a live process of this data directory (not a zombie, not a reused pid)."""
    if sys.platform.startswith("linux"):  # state and command line from /proc
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X") and str(pgdata).encode() in command
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pid: int, pgdata: Path, seconds: float) -> bool:
    ends = time.monotonic() + seconds
    while is_running(pid, pgdata):
        if time.monotonic() >= ends:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def run_as(user: str | None) -> dict[str, Any]:
    """``subprocess`` arguments that drop root to ``user`` entirely (user, group, no extra groups)."""
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def pg_ctl_stop(pg_ctl: str, pgdata: Path, user: str | None, mode: str) -> None:
    """``pg_ctl stop -m <mode>``, waiting for the shutdown; failures are left to the caller's checks."""
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(  # noqa: S603 - our own binary and data directory
            [pg_ctl, "-D", str(pgdata), "-m", mode, "-w", "-t", str(_STOP_WAIT_SECONDS), "stop"],
            **run_as(user),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_STOP_WAIT_SECONDS + 5,
            check=False,
        )


def stop_server(pg_ctl: str, pgdata: Path, user: str | None) -> None:
    """Stop the server of ``pgdata`` if one runs: fast shutdown, then immediate, then SIGKILL."""
    pid = postmaster_pid(pgdata)
    if pid is None or not is_running(pid, pgdata):
        return
    for mode in ("fast", "immediate"):
        pg_ctl_stop(pg_ctl, pgdata, user, mode)
        if _wait_gone(pid, pgdata, _GONE_WAIT_SECONDS):
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # its backends notice the postmaster is gone and exit on their own
    _wait_gone(pid, pgdata, _GONE_WAIT_SECONDS)


def stop_and_remove(pg_ctl: str, pgdata: Path, user: str | None, extra_dirs: Sequence[Path] = ()) -> None:
    """Stop the server (if running) and delete the data directory and ``extra_dirs``."""
    stop_server(pg_ctl, pgdata, user)
    for directory in (pgdata, *extra_dirs):
        shutil.rmtree(directory, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pipe-fd", type=int, required=True, help="read end of the pipe the tool holds open")
    parser.add_argument("--pg-ctl", required=True, help="path of pg_ctl")
    parser.add_argument("--pgdata", type=Path, required=True, help="the server's data directory")
    parser.add_argument("--user", default=None, help="system user the server runs as (when started by root)")
    parser.add_argument("--remove", type=Path, action="append", default=[], help="another directory to delete")
    return parser


def main(argv: Sequence[str]) -> int:
    """Wait for the tool to go, then stop and remove what it started."""
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe decides when to act
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with os.fdopen(args.pipe_fd, "rb", buffering=0) as pipe:
        while pipe.read(4096):
            pass
    stop_and_remove(args.pg_ctl, args.pgdata, args.user, args.remove)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
