"""Stops an embedded PostgreSQL and deletes its folder once the process that started it is gone.

The server runs in a session of its own, so nothing ties it to the tool that started it: a tool
killed outright (SIGKILL, an out-of-memory kill, a CI job timeout) would leave a running server
behind, with its data directory. This module closes that gap. It runs as a tiny separate process,
started in its own session (so a Ctrl-C at the terminal, or a kill of the tool's whole process group,
does not reach it), and blocks on reading a pipe whose only writer is the tool. The pipe reaches
end-of-file when the tool closes it (a normal stop) or when the tool dies, however it dies; the
watchdog then stops the server (if still running) and removes the folder. Through the same pipe the
tool names every process group it starts (``initdb``, the server): a tool killed while ``initdb`` or
the server's start-up runs has those groups killed before the folder is removed, so neither can go
on writing into it, or start a server, after the clean-up. It has no state of its own and the work
is idempotent, so after a normal stop it finds nothing to do and exits.

Standard library only, run as a script by path: it starts in a few milliseconds and needs nothing
from the project's import path. :func:`stop_and_remove` is also what the tool itself calls on a
normal stop, and what the stale sweep of :mod:`devkit.embedded_postgres` calls for a run whose tool
and watchdog are both gone, so every way out runs the same code.
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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

STOP_WAIT_SECONDS = 30
"""How long ``pg_ctl stop`` waits for a shutdown the caller asked for (a restart)."""
_FAST_STOP_SECONDS = 10
_IMMEDIATE_STOP_SECONDS = 5
_GONE_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.05
_PROGRAMS = ("postgres", "initdb", "pg_ctl")
GROUP_LINE = b"group "
"""``group <pgid>\\n`` on the pipe: a process group the tool started for this server."""
ENDED_LINE = b"ended "
"""``ended <pgid>\\n`` on the pipe: that group is over (the tool reaped its leader)."""


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


def _leader_is_foreign(pgid: int, pgdata: Path) -> bool:
    """Whether process ``pgid`` is alive and is not one of this data directory's (Linux; else False)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        state = Path(f"/proc/{pgid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and not is_running(pgid, pgdata)


def group_alive(pgid: int) -> bool:
    """Whether any process is left in process group ``pgid`` (on Linux, zombies waiting for their parent to
    collect them do not count)."""
    if sys.platform.startswith("linux"):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                    return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(pgid: int, pgdata: Path) -> None:
    """SIGKILL every process of group ``pgid`` (a stopped one too), if the group is still this server's:
    its leader names ``pgdata``, or is gone while members are left (a group's id is not reused while
    the group has members)."""
    if _leader_is_foreign(pgid, pgdata):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _wait(condition: Any, seconds: float) -> bool:
    ends = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= ends:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def processes_naming(pgdata: Path) -> list[int]:
    """Pids of ``postgres``, ``initdb`` and ``pg_ctl`` processes whose arguments name ``pgdata``
    (Linux; elsewhere none): a server that has not written ``postmaster.pid`` yet, an ``initdb``."""
    if not sys.platform.startswith("linux"):
        return []
    needle = str(pgdata).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        program = os.path.basename(arguments[0]).decode(errors="replace")
        if program in _PROGRAMS and needle in arguments[1:]:
            found.append(int(entry.name))
    return found


def _group_of(pid: int) -> int | None:
    """``pid``'s process group when ``pid`` leads it (every process the tool starts does), else None."""
    try:
        return pid if os.getpgid(pid) == pid else None
    except ProcessLookupError:
        return None


def run_as(user: str | None) -> dict[str, Any]:
    """``subprocess`` arguments that drop root to ``user`` entirely (user, group, no extra groups)."""
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def pg_ctl_stop(pg_ctl: str, pgdata: Path, user: str | None, mode: str, seconds: int = STOP_WAIT_SECONDS) -> None:
    """``pg_ctl stop -m <mode>``, waiting up to ``seconds``; failures are left to the caller's checks."""
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(  # noqa: S603 - our own binary and data directory
            [pg_ctl, "-D", str(pgdata), "-m", mode, "-w", "-t", str(seconds), "stop"],
            **run_as(user),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=seconds + 5,
            check=False,
        )


def stop_server(pg_ctl: str, pgdata: Path, user: str | None) -> None:
    """Stop the server of ``pgdata`` if one runs: fast shutdown, then immediate, then SIGKILL to its whole
    process group (a hung server, or one whose processes are stopped, cannot hold the teardown up)."""
    pid = postmaster_pid(pgdata)
    if pid is None or not is_running(pid, pgdata):
        return
    group = _group_of(pid)
    for mode, seconds in (("fast", _FAST_STOP_SECONDS), ("immediate", _IMMEDIATE_STOP_SECONDS)):
        pg_ctl_stop(pg_ctl, pgdata, user, mode, seconds)
        if _wait(lambda: not is_running(pid, pgdata), 1.0):
            break
    if group is not None:
        kill_group(group, pgdata)  # its backends, and the postmaster if it is still there
        _wait(lambda: not group_alive(group), _GONE_WAIT_SECONDS)
    elif is_running(pid, pgdata):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait(lambda: not is_running(pid, pgdata), _GONE_WAIT_SECONDS)


def stop_and_remove(pg_ctl: str, home: Path, pgdata: Path, user: str | None, groups: Iterable[int] = ()) -> None:
    """Kill the helpers still running (``initdb``, a server starting), stop the server, delete ``home``.

    ``groups``: process groups the tool started for this server; with those named in ``pgdata``'s
    processes' arguments, they are killed first, so nothing writes into the folder or starts a
    server once it is gone.
    """
    helpers = set(groups)
    helpers.update(group for group in map(_group_of, processes_naming(pgdata)) if group is not None)
    server = postmaster_pid(pgdata)
    for group in sorted(helpers - {server} if server is not None else helpers):
        kill_group(group, pgdata)  # initdb or pg_ctl halfway through, or a server not yet in postmaster.pid
    _wait(lambda: not any(group_alive(group) for group in helpers - {server}), _GONE_WAIT_SECONDS)
    stop_server(pg_ctl, pgdata, user)
    for group in helpers:  # a server started after postmaster.pid was read
        kill_group(group, pgdata)
    _wait(lambda: not any(group_alive(group) for group in helpers), _GONE_WAIT_SECONDS)
    shutil.rmtree(home, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pipe-fd", type=int, required=True, help="read end of the pipe the tool holds open")
    parser.add_argument("--pg-ctl", required=True, help="path of pg_ctl")
    parser.add_argument("--home", type=Path, required=True, help="the run's folder, deleted at the end")
    parser.add_argument("--pgdata", type=Path, required=True, help="the server's data directory")
    parser.add_argument("--user", default=None, help="system user the server runs as (when started by root)")
    return parser


def read_groups(pipe: Any) -> set[int]:
    """Read the pipe to end-of-file; return the process groups it named and did not say were over."""
    groups: set[int] = set()
    pending = b""
    while chunk := pipe.read(4096):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            word, _, number = line.partition(b" ")
            if number.isdigit():
                if word + b" " == GROUP_LINE:
                    groups.add(int(number))
                elif word + b" " == ENDED_LINE:
                    groups.discard(int(number))
    return groups


def main(argv: Sequence[str]) -> int:
    """Wait for the tool to go, then stop and remove what it started."""
    args = _parser().parse_args(argv)
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):  # only the pipe decides when to act
        signal.signal(number, signal.SIG_IGN)
    with os.fdopen(args.pipe_fd, "rb", buffering=0) as pipe:
        groups = read_groups(pipe)
    stop_and_remove(args.pg_ctl, args.home, args.pgdata, args.user, groups)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
