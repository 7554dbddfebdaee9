"""How the development tools end on an expected failure: one line a person can act on, no traceback.

A database that cannot be reached, a fixed port already taken, a missing setting: these are the
user's to fix, and a traceback only hides the sentence that says what to fix. Each tool (``make run``,
``make chaos``, ``make bench``, ``make migrate``) says them the same way, ``<tool>: <kind> error:
<what>`` on stderr, and exits with :data:`CONFIGURATION_EXIT`. The traceback is printed too with the
tool's ``--debug`` flag or ``LOG_LEVEL=DEBUG``. Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable

from telemetry_adapter.config import ConfigurationError

CONFIGURATION_EXIT = 2
"""A usage or configuration error: a flag, a setting, a database that cannot be reached, a port taken."""


def debugging(flag: bool = False) -> bool:
    """Whether tracebacks are wanted: ``--debug``, or the log level set to DEBUG."""
    return flag or os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"


def expected_failure(error: BaseException) -> str | None:
    """The one-line message for a failure the user can fix; None for anything else (a bug)."""
    if isinstance(error, ConfigurationError):
        return f"configuration error: {error}"
    if type(error).__module__.startswith("pg8000") or isinstance(error, ConnectionError):
        return f"database error: {error}"
    return None


def fail(tool: str, message: str, status: int, *, debug: bool = False) -> int:
    """Say ``message`` in one line on stderr (after the traceback being handled, when debugging); return
    ``status``. A stderr that is gone is no reason to fail again."""
    with contextlib.suppress(OSError, ValueError):
        if debugging(debug):
            traceback.print_exc()
        print(f"{tool}: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return status


def reported(tool: str, body: Callable[[], int], *, debug: bool = False) -> int:
    """Run ``body``; an expected failure becomes one line and :data:`CONFIGURATION_EXIT`. By the time it is
    caught here every ``with`` block inside ``body`` has run its clean-up."""
    try:
        return body()
    except Exception as error:
        message = expected_failure(error)
        if message is None:
            raise
        return fail(tool, message, CONFIGURATION_EXIT, debug=debug)
