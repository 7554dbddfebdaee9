"""The tools' terminal, which may go away while they run.

A closed terminal window sends SIGHUP and turns every later write into ``EIO``; ``make run | head -1``
turns them into ``EPIPE`` once ``head`` has its line. Neither is a reason to crash with a traceback or
to leave servers behind: the tool stops printing, stops as it would on SIGTERM, cleans up, and exits
with :data:`HANGUP_EXIT`. :class:`Terminal` is the stream the tools print through: a write that finds
the output gone is dropped, along with every later one, and reported once to ``on_lost``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Protocol, TextIO

HANGUP_EXIT = 128 + signal.SIGHUP
"""The exit status when the terminal went away (SIGHUP, or a write to stdout or stderr failed)."""
STOPPED_EXIT = 128 + signal.SIGINT
"""The exit status of a tool stopped before its end (Ctrl-C, SIGTERM), where it has one."""
_GONE = {errno.EPIPE, errno.EIO, errno.ENXIO}


class Output(Protocol):
    """What the live view, the heartbeat and the progress lines write to."""

    def write(self, text: str, /) -> int:
        """Write ``text``."""

    def flush(self) -> None:
        """Push what was written out."""

    def isatty(self) -> bool:
        """Whether the output is a terminal (the live view redraws in place on one)."""


def output_gone(error: BaseException) -> bool:
    """Whether ``error`` says the output is gone (a closed terminal, a closed pipe)."""
    return isinstance(error, OSError) and error.errno in _GONE


def silence(stream: TextIO) -> None:
    """Point ``stream``'s file descriptor at ``/dev/null``: what is still buffered, and what the interpreter
    flushes at exit, goes nowhere instead of failing again."""
    with contextlib.suppress(OSError, ValueError):
        target = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, target)
        finally:
            os.close(null)


class Terminal:
    """``stream``, unless it went away: then writes are dropped, and ``on_lost`` is called once."""

    def __init__(self, stream: TextIO, on_lost: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self.lost = threading.Event()
        try:
            self._tty = stream.isatty()
        except (OSError, ValueError):
            self._tty = False

    def write(self, text: str, /) -> int:
        """Write and flush ``text`` (a line at a time is what the tools write); nothing once gone."""
        with self._lock:
            if self.lost.is_set():
                return len(text)
            try:
                self._stream.write(text)
                self._stream.flush()
                return len(text)
            except (OSError, ValueError) as error:  # ValueError: the stream was closed
                if isinstance(error, OSError) and not output_gone(error):
                    raise
                self.lost.set()
                silence(self._stream)
        if self._on_lost is not None:  # outside the lock: it may print elsewhere, or stop the run
            self._on_lost()
        return len(text)

    def flush(self) -> None:
        """Every write is flushed already."""

    def isatty(self) -> bool:
        """Whether the stream was a terminal when the tool started."""
        return self._tty


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the tool is, as Ctrl-C raises KeyboardInterrupt: every ``with`` block
    on the way out cleans up (the embedded PostgreSQL, moto), and the tool says why it stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        """The exit status: :data:`HANGUP_EXIT` for SIGHUP, :data:`STOPPED_EXIT` otherwise."""
        return HANGUP_EXIT if self.signum == signal.SIGHUP else STOPPED_EXIT


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """For a tool without a stop of its own: SIGTERM and SIGHUP raise :class:`StopSignal` for the block
    (main thread only; the handlers are restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        raise StopSignal(signum)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
