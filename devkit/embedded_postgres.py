"""An embedded PostgreSQL that lives exactly as long as the tool that started it.

The server binaries come from the ``pgserver`` wheel (pip-installed, no system PostgreSQL needed);
the lifecycle is ours. ``initdb`` and the server itself are started directly (no shell, so any
temporary directory's path works, spaces and quotes included), each in a session of its own, and
every stop goes through the data directory (``pg_ctl -D``, and the pid in ``postmaster.pid``, which
PostgreSQL keeps current), so it finds the server whichever postmaster runs now (``make chaos``
restarts it for real).

Each run has a private folder ``ta-pg-*`` under the temporary directory: a marker file naming the
tool and its watchdog (pid and start time), the data directory (also the socket's folder), the
server's log. Every way out stops the server and deletes that folder:

* a normal exit, an exception, Ctrl-C, SIGTERM or SIGHUP turned into an exception:
  :meth:`EmbeddedPostgres.close` (a context manager and ``atexit``);
* a restart in flight when the tool ends: :meth:`EmbeddedPostgres.restart` and ``close`` share a lock,
  and a restart that finds the server closed does not start it again;
* the tool killed outright, even while ``initdb`` or the server's start-up runs: a watchdog process
  (:mod:`devkit.postgres_watchdog`), in a session of its own, holding a pipe to the tool, notices it
  is gone and does the same clean-up within a second or so, killing the process groups still at work;
* tool and watchdog both gone (a reboot, everything SIGKILLed at once): the next run's start sweeps
  the folders whose marker names processes that no longer exist (this user's, this kind's only).

As root, the server runs as an unprivileged system user: the run's folder is opened to it for search
only (0711), the data directory is its own, and when it cannot reach the binaries where pip put them
(under ``/root``, say) they are linked or copied into the run's folder. No existing folder changes mode.

The server listens on a Unix socket in its data directory, and on ``127.0.0.1:<port>`` too when a TCP
port is asked for (``make run`` exposes it for ``make invoke`` and ``sam local invoke``). Trust
authentication, user and database ``postgres``: a throwaway development server, loopback only.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from devkit import postgres_watchdog

_SOCKET_PATH_MAX = 100  # sun_path is 104 to 108 bytes depending on the platform
_SOCKET_TAIL = "/ta-pg-xxxxxxxx/data/.s.PGSQL.65535"
_START_TIMEOUT_SECONDS = 60
_WATCHDOG_EXIT_SECONDS = 15
_POLL_SECONDS = 0.05
PREFIX = "ta-pg-"
MARKER = "owner.json"
MARKER_KIND = "telemetry-adapter embedded PostgreSQL"
SERVER_USER_WHEN_ROOT = "pgserver"
"""PostgreSQL refuses to run as root; as root, the server runs as this user (as ``pgserver`` does)."""


class EmbeddedPostgresMissing(RuntimeError):
    """No server was named and the embedded one is not installed."""


class EmbeddedPostgresFailed(RuntimeError):
    """The embedded server did not start; the message carries the end of its log."""


def _binaries() -> Path:
    """The ``pginstall`` folder of the ``pgserver`` wheel, found without importing the package (its import
    creates a runtime folder and a lock file we do not use)."""
    spec = importlib.util.find_spec("pgserver")
    locations = list(spec.submodule_search_locations or []) if spec else []
    installs = [Path(location) / "pginstall" for location in locations]
    found = next((path for path in installs if (path / "bin" / "pg_ctl").exists()), None)
    if found is None:
        raise EmbeddedPostgresMissing(
            "the embedded PostgreSQL is missing and no server was named: run `make test` (it installs "
            "requirements-dev.txt), `pip install pgserver`, or set TEST_DATABASE_URL to a running server"
        )
    return found


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class _Account:
    """The unprivileged user the server runs as when the tool runs as root."""

    name: str
    uid: int
    gid: int

    def can_enter(self, path: Path) -> bool:
        """Whether this user may reach ``path`` (search permission on it and every folder above it)."""
        for folder in (path, *path.parents):
            try:
                info = folder.stat()
            except OSError:
                return False
            if info.st_uid == self.uid:
                bit = stat.S_IXUSR
            elif info.st_gid == self.gid:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not info.st_mode & bit:
                return False
        return True


def _server_account() -> _Account | None:
    """As root, the server's user (created as a system user the first time); otherwise None."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
    except KeyError:  # another run may be creating it at the same moment: look again either way
        command = ["useradd", "--system", "--no-create-home", SERVER_USER_WHEN_ROOT]
        subprocess.run(command, check=False, capture_output=True)  # noqa: S603 - a fixed command
        entry = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _base_directory(account: _Account | None) -> Path:
    """Where the run's folder goes: the temporary directory, or ``/tmp`` when that one is too long for a
    Unix socket path (macOS) or, as root, out of the server's user's reach or holding a character a shell
    reads inside double quotes. As root the binaries may be copied into the run's folder, and initdb runs
    ``"<its folder>/postgres" -V`` through a shell: a ``"``, ``$``, backquote or backslash in that path
    breaks it. No folder's mode is changed."""
    for candidate in dict.fromkeys((Path(tempfile.gettempdir()), Path("/tmp"))):  # noqa: S108 - a private folder is made in it
        short = len(str(candidate) + _SOCKET_TAIL) <= _SOCKET_PATH_MAX
        usable = account is None or (account.can_enter(candidate) and not set(str(candidate)) & set('"$`\\'))
        if short and usable:
            return candidate
    raise EmbeddedPostgresFailed(
        f"no temporary directory for the embedded PostgreSQL: TMPDIR ({tempfile.gettempdir()}) is too long for a"
        " socket path or not reachable by the server's user, and so is /tmp"
    )


def _process_start(pid: int) -> str | None:
    """When ``pid`` started (Linux: clock ticks since boot; elsewhere ``""`` if it lives), None if gone:
    with the pid it names one process, not a later one that reused the pid."""
    if sys.platform.startswith("linux"):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return None if fields[0] in ("Z", "X") else fields[19]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


def _alive(pid: object, started: object) -> bool:
    return isinstance(pid, int) and pid > 0 and _process_start(pid) == started


def sweep_stale(base: Path, pg_ctl: str, account: _Account | None) -> list[Path]:
    """Stop the servers and delete the folders that earlier runs left in ``base`` when both their tool and
    its watchdog are gone (the machine rebooted, or everything was SIGKILLed at once).

    Only this kind's folders are touched: a ``ta-pg-*`` folder owned by this user, not writable by
    others, holding the marker file a run writes; never another user's or another program's server.
    Returns the folders removed.
    """
    removed = []
    for home in sorted(base.glob(f"{PREFIX}*")):
        try:
            info = home.lstat()
            marker = home / MARKER
            marker_info = marker.lstat()
            owner = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        own = info.st_uid == marker_info.st_uid == os.geteuid()
        private = stat.S_ISDIR(info.st_mode) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if not (own and private and stat.S_ISREG(marker_info.st_mode)) or not isinstance(owner, dict):
            continue
        if owner.get("kind") != MARKER_KIND:
            continue
        tool_alive = _alive(owner.get("pid"), owner.get("started"))
        if tool_alive or _alive(owner.get("watchdog"), owner.get("watchdog_started")):
            continue
        postgres_watchdog.stop_and_remove(pg_ctl, home, home / "data", account.name if account else None)
        removed.append(home)
    return removed


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _copy_install(install: Path, target: Path) -> Path:
    """A copy of the wheel's ``pginstall`` in ``target`` (hard links where the file system allows), with the
    wheel's bundled libraries beside it (``pgserver.libs``: the binaries find them by a relative path)."""
    package = install.parent
    copy = target / package.name / install.name
    shutil.copytree(install, copy, symlinks=True, copy_function=_link_or_copy)
    for libraries in package.parent.glob(f"{package.name}*.libs"):
        shutil.copytree(libraries, target / libraries.name, symlinks=True, copy_function=_link_or_copy)
    return copy


class EmbeddedPostgres:
    """One embedded server in a fresh private folder; use as a context manager."""

    def __init__(self, *, tcp_port: int | None = None) -> None:
        """``tcp_port``: None for the Unix socket only, 0 for any free loopback port, else that port."""
        self._requested_port = tcp_port
        self.port: int | None = None
        self.home = Path()
        self.pgdata = Path()
        self._install = Path()
        self._account: _Account | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._pipe_write: int | None = None
        self._helpers: dict[int, subprocess.Popen[bytes]] = {}
        self._server: subprocess.Popen[bytes] | None = None

    @property
    def _user(self) -> str | None:
        return self._account.name if self._account else None

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the ``postgres`` database (TCP when a port was asked for)."""
        if self.port is not None:
            return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        from urllib.parse import quote

        return f"postgresql://postgres@/postgres?host={quote(str(self.pgdata), safe='/')}"

    @property
    def pg_ctl(self) -> str:
        """Path of this server's ``pg_ctl``."""
        return str(self._install / "bin" / "pg_ctl")

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Sweep stale runs, create the private folder, arm the watchdog, initialise and start the server.

        The folder (``ta-pg-*``) holds the marker file naming this process and its watchdog, the data
        directory (``data``, also the socket's folder), the server's log and, as root when the server's
        user cannot reach the installed binaries, a linked copy of them."""
        self._install = _binaries()
        self._account = _server_account()
        base = _base_directory(self._account)
        sweep_stale(base, self.pg_ctl, self._account)
        self.home = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        self.pgdata = self.home / "data"
        atexit.register(self.close)
        try:
            self._start_watchdog()
            self._write_marker()
            self._prepare_folders()
            self._run_helper(
                "initdb",
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "-U",
                "postgres",
            )
            if self._requested_port is not None:
                self.port = self._requested_port or free_loopback_port()
            if not self._start_postmaster():
                raise EmbeddedPostgresFailed("the embedded PostgreSQL was closed while it started")
        except BaseException:
            self.close()
            raise

    def restart(self, down_seconds: float) -> bool:
        """Stop the server (fast shutdown), stay down ``down_seconds``, start it again with the same options.

        Returns False, leaving the server stopped, when :meth:`close` came first or meanwhile.
        """
        with self._lock:
            if self._closing.is_set():
                return False
            postgres_watchdog.pg_ctl_stop(self.pg_ctl, self.pgdata, self._user, "fast")
            self._reap_server()
        if self._closing.wait(down_seconds):
            return False
        with self._lock:
            if self._closing.is_set():
                return False
            return self._start_postmaster()

    def close(self) -> None:
        """Stop the server, delete its folder, and dismiss the watchdog. Safe to call twice, and from a
        signal handler or another thread while ``initdb`` or the server's start-up runs."""
        self._closing.set()
        for helper in list(self._helpers.values()):  # a start-up in flight: no server may come up after this
            postgres_watchdog.kill_group(helper.pid, self.pgdata)
        with self._lock:
            if self.home != Path():
                groups = [*self._helpers, *([self._server.pid] if self._server else [])]
                postgres_watchdog.stop_and_remove(self.pg_ctl, self.home, self.pgdata, self._user, groups)
                self._reap_server()
            if self._pipe_write is not None:
                os.close(self._pipe_write)  # end-of-file for the watchdog: it finds nothing left and exits
                self._pipe_write = None
            if self._watchdog is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._watchdog.wait(_WATCHDOG_EXIT_SECONDS)
                self._watchdog = None
        atexit.unregister(self.close)

    def _tell_watchdog(self, line: bytes, pid: int) -> None:
        if self._pipe_write is not None:
            with contextlib.suppress(OSError):
                os.write(self._pipe_write, line + str(pid).encode() + b"\n")

    def _start_watchdog(self) -> None:
        read_end, self._pipe_write = os.pipe()  # both ends close-on-exec: no other child inherits them
        command = [
            sys.executable,
            "-I",  # isolated: no user site, no PYTHONPATH; the watchdog is standard library only
            postgres_watchdog.__file__,
            f"--pipe-fd={read_end}",
            f"--pg-ctl={self.pg_ctl}",
            f"--home={self.home}",
            f"--pgdata={self.pgdata}",
        ]
        if self._user:
            command.append(f"--user={self._user}")
        try:
            self._watchdog = subprocess.Popen(  # noqa: S603 - our interpreter and module
                command,
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of the tool's process group and session: a Ctrl-C or a group kill
            )  # of the tool does not reach it
        finally:
            os.close(read_end)

    def _write_marker(self) -> None:
        """The marker the stale sweep of a later run reads: this kind, this process and its watchdog."""
        watchdog = self._watchdog.pid if self._watchdog else 0
        owner = {
            "kind": MARKER_KIND,
            "pid": os.getpid(),
            "started": _process_start(os.getpid()),
            "watchdog": watchdog,
            "watchdog_started": _process_start(watchdog) if watchdog else None,
        }
        (self.home / MARKER).write_text(json.dumps(owner) + "\n", encoding="utf-8")

    def _prepare_folders(self) -> None:
        """The data directory; as root, owned by the server's user, inside the run's folder opened to it
        for search only (0711), with the binaries copied in when that user cannot reach them where pip
        put them (under /root, say). Only folders this run created change mode or owner."""
        self.pgdata.mkdir(mode=0o700)
        if self._account is None:
            return
        self.home.chmod(0o711)
        os.chown(self.pgdata, self._account.uid, self._account.gid)
        if not self._account.can_enter(self._install / "bin"):
            self._install = _copy_install(self._install, self.home / "pg")

    def _start_postmaster(self) -> bool:
        """Start ``postgres`` itself (no shell: any path works) and wait until it says it is ready; False
        (the server stopped again) when :meth:`close` came meanwhile."""
        listen = "127.0.0.1" if self.port is not None else ""
        log = self.home / "server.log"
        command = [
            str(self._install / "bin" / "postgres"),
            "-D",
            str(self.pgdata),
            "-k",
            str(self.pgdata),
            "-h",
            listen,
            "-p",
            str(self.port if self.port is not None else 5432),
        ]
        with log.open("ab") as output:
            self._server = self._spawn(command, output)
        self._tell_watchdog(postgres_watchdog.GROUP_LINE, self._server.pid)
        if self._wait_ready(self._server):
            return True
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        postgres_watchdog.kill_group(self._server.pid, self.pgdata)
        self._reap_server()
        if self._closing.is_set():
            return False
        raise EmbeddedPostgresFailed(f"the embedded PostgreSQL did not start\nserver log ({log}):\n{tail}")

    def _wait_ready(self, server: subprocess.Popen[bytes]) -> bool:
        """Whether the server reports itself ready in ``postmaster.pid`` (what ``pg_ctl -w`` waits for)."""
        ends = time.monotonic() + _START_TIMEOUT_SECONDS
        while time.monotonic() < ends and server.poll() is None and not self._closing.is_set():
            try:
                lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 8 and lines[0].strip() == str(server.pid) and lines[7].strip() == "ready":
                return True
            time.sleep(_POLL_SECONDS)
        return False

    def _reap_server(self) -> None:
        if self._server is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._server.wait(_WATCHDOG_EXIT_SECONDS)
            self._tell_watchdog(postgres_watchdog.ENDED_LINE, self._server.pid)
            self._server = None

    def _spawn(self, command: list[str], output: IO[bytes]) -> subprocess.Popen[bytes]:
        # A session of its own: a Ctrl-C at the terminal reaches the tool, which decides when the server
        # stops, not initdb or the postmaster halfway through starting. Output to a file, not a pipe: a
        # pipe would be kept open by whatever the command leaves running.
        return subprocess.Popen(  # noqa: S603 - our own binaries
            command,
            **postgres_watchdog.run_as(self._user),
            start_new_session=True,
            cwd=self.pgdata,  # a folder the server's user can enter
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def _run_helper(self, program: str, *args: str) -> None:
        """Run ``program`` to its end, its process group named to the watchdog while it runs: a tool
        stopped or killed meanwhile has the whole group (initdb's own ``postgres`` children too) killed."""
        with tempfile.TemporaryFile() as output:
            helper = self._spawn([str(self._install / "bin" / program), *args], output)
            self._helpers[helper.pid] = helper
            self._tell_watchdog(postgres_watchdog.GROUP_LINE, helper.pid)
            try:
                code = helper.wait(_START_TIMEOUT_SECONDS + 10)
            except BaseException:  # Ctrl-C, or the time is up: nothing of it may go on
                postgres_watchdog.kill_group(helper.pid, self.pgdata)
                helper.wait()
                raise
            finally:
                self._helpers.pop(helper.pid, None)
                self._tell_watchdog(postgres_watchdog.ENDED_LINE, helper.pid)
            if code != 0 or self._closing.is_set():
                output.seek(0)
                text = output.read().decode(errors="replace")[-2000:]
                raise EmbeddedPostgresFailed(f"{program} failed (exit {code}): {text}")


@contextlib.contextmanager
def embedded_postgres(*, tcp_port: int | None = None) -> Iterator[EmbeddedPostgres]:
    """Start an embedded server; stop it and delete its folder on the way out."""
    with EmbeddedPostgres(tcp_port=tcp_port) as server:
        yield server
