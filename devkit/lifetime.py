"""Child processes that die with the process that started them.

A tool killed outright (SIGKILL, a CI timeout) cannot stop its children; on Linux the kernel can, with
the parent-death signal (``prctl(PR_SET_PDEATHSIG)``), which a child asks for itself at start. The
parent passes its pid in :data:`PARENT_ENV`, so a child whose parent died before it asked stops at
once instead of waiting for a signal that will never come. Elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "TA_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_environment() -> dict[str, str]:
    """The variable to add to a child's environment: this process's pid."""
    return {PARENT_ENV: str(os.getpid())}


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In the child: receive ``signum`` when the parent :data:`PARENT_ENV` names exits (now, if it has)."""
    parent = os.environ.get(PARENT_ENV, "")
    if not sys.platform.startswith("linux") or not parent.isdigit():
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signum)
