"""An embedded PostgreSQL that lives exactly as long as the tool that started it.

The server binaries come from the ``pgserver`` wheel (pip-installed, no system PostgreSQL needed);
the lifecycle is ours, because ``pgserver`` only stops the postmaster it started itself: after a
restart (``make chaos`` restarts the server for real) the new postmaster is unknown to it and was
left running. Here every stop goes through the data directory (``pg_ctl -D``, and the pid in
``postmaster.pid``, which PostgreSQL keeps current), so it finds the server whichever postmaster
runs now.

Every way out stops the server and deletes its data directory:

* a normal exit, an exception, Ctrl-C or SIGTERM turned into an exception: :meth:`EmbeddedPostgres.close`
  (a context manager and ``atexit``);
* a restart in flight when the tool ends: :meth:`EmbeddedPostgres.restart` and ``close`` share a lock,
  and a restart that finds the server closed does not start it again;
* the tool killed outright: a watchdog process (:mod:`devkit.postgres_watchdog`) holding a pipe to
  the tool notices it is gone and does the same clean-up, within a second or so.

The server listens on a Unix socket in a private folder, and on ``127.0.0.1:<port>`` too when a TCP
port is asked for (``make run`` exposes it for ``make invoke`` and ``sam local invoke``). Trust
authentication, user and database ``postgres``: a throwaway development server, loopback only.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from devkit import postgres_watchdog

_SOCKET_PATH_MAX = 100  # sun_path is 104 to 108 bytes depending on the platform
_START_TIMEOUT_SECONDS = 60
_WATCHDOG_EXIT_SECONDS = 15
SERVER_USER_WHEN_ROOT = "pgserver"
"""PostgreSQL refuses to run as root; as root, the server runs as this user (as ``pgserver`` does)."""


class EmbeddedPostgresMissing(RuntimeError):
    """No server was named and the embedded one is not installed."""


class EmbeddedPostgresFailed(RuntimeError):
    """The embedded server did not start; the message carries the end of its log."""


def _binaries() -> Path:
    """The ``bin`` folder of the ``pgserver`` wheel, found without importing the package (its import
    creates a runtime folder and a lock file we do not use)."""
    spec = importlib.util.find_spec("pgserver")
    locations = list(spec.submodule_search_locations or []) if spec else []
    binaries = [Path(location) / "pginstall" / "bin" for location in locations]
    found = next((path for path in binaries if (path / "pg_ctl").exists()), None)
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


class EmbeddedPostgres:
    """One embedded server in a fresh temporary data directory; use as a context manager."""

    def __init__(self, *, tcp_port: int | None = None) -> None:
        """``tcp_port``: None for the Unix socket only, 0 for any free loopback port, else that port."""
        self._requested_port = tcp_port
        self.port: int | None = None
        self.pgdata = Path()
        self._socket_dir = Path()
        self._extra_dirs: list[Path] = []
        self._bin = Path()
        self._user: str | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._pipe_write: int | None = None

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the ``postgres`` database (TCP when a port was asked for)."""
        if self.port is not None:
            return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return f"postgresql://postgres@/postgres?host={self._socket_dir}"

    @property
    def pg_ctl(self) -> str:
        """Path of this server's ``pg_ctl``."""
        return str(self._bin / "pg_ctl")

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Create the data directory, arm the watchdog, initialise and start the server."""
        self._bin = _binaries()
        self.pgdata = Path(tempfile.mkdtemp(prefix="ta-pg-"))
        self._socket_dir = self.pgdata
        if len(str(self.pgdata / ".s.PGSQL.65535")) > _SOCKET_PATH_MAX:  # a long TMPDIR (macOS)
            self._socket_dir = Path(tempfile.mkdtemp(prefix="ta-pgsock-", dir="/tmp"))
            self._extra_dirs.append(self._socket_dir)
        self._start_watchdog()
        atexit.register(self.close)
        try:
            self._prepare_for_root()
            self._run(
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
            self._start_postmaster()
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
        if self._closing.wait(down_seconds):
            return False
        with self._lock:
            if self._closing.is_set():
                return False
            self._start_postmaster()
        return True

    def close(self) -> None:
        """Stop the server, delete its folders, and dismiss the watchdog. Safe to call twice."""
        self._closing.set()
        with self._lock:
            if self.pgdata != Path():
                postgres_watchdog.stop_and_remove(self.pg_ctl, self.pgdata, self._user, self._extra_dirs)
            if self._pipe_write is not None:
                os.close(self._pipe_write)  # end-of-file for the watchdog: it finds nothing left and exits
                self._pipe_write = None
            if self._watchdog is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._watchdog.wait(_WATCHDOG_EXIT_SECONDS)
                self._watchdog = None
        atexit.unregister(self.close)

    def _start_watchdog(self) -> None:
        read_end, self._pipe_write = os.pipe()  # both ends close-on-exec: no other child inherits them
        command = [
            sys.executable,
            "-I",  # isolated: no user site, no PYTHONPATH; the watchdog is standard library only
            postgres_watchdog.__file__,
            f"--pipe-fd={read_end}",
            f"--pg-ctl={self.pg_ctl}",
            f"--pgdata={self.pgdata}",
            *(f"--remove={directory}" for directory in self._extra_dirs),
        ]
        if os.name == "posix" and os.geteuid() == 0:
            command.append(f"--user={SERVER_USER_WHEN_ROOT}")
        try:
            self._watchdog = subprocess.Popen(  # noqa: S603 - our interpreter and module
                command,
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read_end)

    def _prepare_for_root(self) -> None:
        """As root, run the server as an unprivileged user that owns the folders and can reach them."""
        if os.name != "posix" or os.geteuid() != 0:
            return
        import pwd

        try:
            account = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
        except KeyError:  # another run may be creating it at the same moment: look again either way
            command = ["useradd", "--system", SERVER_USER_WHEN_ROOT]
            subprocess.run(command, check=False, capture_output=True)  # noqa: S603 - a fixed command
            account = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
        self._user = SERVER_USER_WHEN_ROOT
        for directory in {self.pgdata, self._socket_dir}:
            os.chown(directory, account.pw_uid, account.pw_gid)
            for parent in directory.parents:  # every folder above must be traversable by that user
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(mode | stat.S_IXOTH)

    def _start_postmaster(self) -> None:
        listen = f"-h 127.0.0.1 -p {self.port}" if self.port is not None else "-h '' -p 5432"
        log = self.pgdata / "log"
        try:
            self._run(
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                str(_START_TIMEOUT_SECONDS),
                "-o",
                f"{listen} -k {self._socket_dir}",
                "-l",
                str(log),
                "start",
            )
        except EmbeddedPostgresFailed as error:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedPostgresFailed(f"{error}\nserver log ({log}):\n{tail}") from None

    def _run(self, program: str, *args: str) -> None:
        # Output to a file, not a pipe: the server that pg_ctl starts inherits it and would keep a pipe open.
        # A session of its own: a Ctrl-C at the terminal reaches the tool, which decides when the server
        # stops, not initdb, pg_ctl or the postmaster halfway through starting.
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(  # noqa: S603 - our own binaries
                [str(self._bin / program), *args],
                **postgres_watchdog.run_as(self._user),
                start_new_session=True,
                cwd=self.pgdata,  # a folder the server's user can enter
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=_START_TIMEOUT_SECONDS + 10,
                check=False,
            )
            if result.returncode != 0:
                output.seek(0)
                text = output.read().decode(errors="replace")[-2000:]
                raise EmbeddedPostgresFailed(f"{program} failed (exit {result.returncode}): {text}")


@contextlib.contextmanager
def embedded_postgres(*, tcp_port: int | None = None) -> Iterator[EmbeddedPostgres]:
    """Start an embedded server; stop it and delete its data directory on the way out."""
    with EmbeddedPostgres(tcp_port=tcp_port) as server:
        yield server
