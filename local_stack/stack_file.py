"""Where a running ``make run`` is: the file it writes for other tools (``build/local-stack.json``).

The operators' tool (``make ops ARGS='--local ...'``) reads it to reach the run's AWS endpoint, queues,
quarantine bucket, stream, ledger and health endpoint, which sit on ports chosen at start-up. The
file is written once the run is up and removed when it stops; it names the process that wrote it, so
a file left behind by a run that was killed is recognised as stale rather than trusted. It holds the
ledger's URL (a password, if ``--database-url`` gave one), so only its owner may read it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PATH = Path("build/local-stack.json")
FORMAT_VERSION = 1
_PROBE_SECONDS = 0.5


@dataclass(frozen=True)
class LocalStackFile:
    """The endpoints of one running local stack."""

    aws_endpoint: str
    region: str
    queue_url: str
    dlq_url: str
    quarantine_bucket: str
    stream_name: str
    database_url: str
    health_url: str
    pid: int
    started_at: str
    format_version: int = FORMAT_VERSION

    def is_running(self) -> bool:
        """Whether the process that wrote the file is still alive (a killed run leaves its file behind).
        A file that records no process (``pid`` 0) says nothing either way: False."""
        if self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, but another user's
            return True
        return True

    def endpoints_answer(self) -> bool:
        """Whether the AWS endpoint and the ledger both accept a connection (a short, bounded probe)."""
        return all(_answers(url) for url in (self.aws_endpoint, self.database_url))


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=_PROBE_SECONDS):
            return True
    except OSError:
        return False


def live(path: Path) -> tuple[LocalStackFile | None, str]:
    """The running stack ``path`` describes, or None; and, either way, the sentence that says why.

    Alive means: the process the file names is running; for a file that names none, its AWS endpoint
    and its ledger answer."""
    try:
        stack = read(path)
    except StackFileError as error:
        return None, str(error)
    if stack.pid > 0:
        if stack.is_running():
            return stack, f"{path}: the `make run` of process {stack.pid}, started {stack.started_at}"
        return None, f"{path} is stale: the `make run` that wrote it (process {stack.pid}) is no longer running"
    if stack.endpoints_answer():
        return stack, f"{path}: its endpoints answer ({stack.aws_endpoint})"
    return None, f"{path} names no process and its endpoints do not answer ({stack.aws_endpoint})"


class StackFileError(ValueError):
    """The file is missing, unreadable or not a local stack's."""


def write(path: Path, stack: LocalStackFile) -> None:
    """Write ``stack`` to ``path`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(asdict(stack), out, indent=2)
        out.write("\n")
    partial.replace(path)


def read(path: Path) -> LocalStackFile:
    """The stack ``path`` describes; StackFileError saying what is wrong otherwise."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackFileError(f"{path} does not exist: start the local stack with `make run` first") from None
    except (OSError, ValueError) as error:
        raise StackFileError(f"{path} cannot be read as a local stack file: {error}") from None
    names = {item.name for item in fields(LocalStackFile)}
    if not isinstance(document, dict) or not names - {"format_version", "pid"} <= set(document):
        raise StackFileError(f"{path} is not a local stack file (written by `make run`)")
    document.setdefault("pid", 0)  # a file written by hand may name no process: its endpoints then decide
    try:
        return LocalStackFile(**{key: value for key, value in document.items() if key in names})
    except TypeError as error:
        raise StackFileError(f"{path} is not a local stack file: {error}") from None


@contextlib.contextmanager
def published(path: Path, stack: LocalStackFile) -> Iterator[None]:
    """``stack`` written to ``path`` for the duration of the block, removed afterwards (if still ours)."""
    write(path, stack)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, StackFileError):
            if read(path).pid == stack.pid:
                path.unlink()


def now_text() -> str:
    """The current time as ISO 8601 UTC with ``Z``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
