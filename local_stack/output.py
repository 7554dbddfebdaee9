"""Keeps the terminal for the live view: the processor's output goes to a log file while a run lasts.

Powertools writes JSON logs through a ``StreamHandler`` bound to stdout at import time, and EMF
metrics with ``print``; anything else (thread tracebacks, warnings) goes to stderr. For the run, the
logger's handler is pointed at the log file and ``sys.stdout``/``sys.stderr`` are swapped for it, so
nothing but the view reaches the terminal; the view writes to the terminal stream it is handed.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from telemetry_adapter.observability import logger


@contextlib.contextmanager
def output_to_log(path: Path) -> Iterator[TextIO]:
    """Route process output to ``path`` for the block; yield the terminal's stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    terminal = sys.stdout
    with path.open("w", encoding="utf-8", buffering=1) as log:  # each run's own: an earlier run's lines would mislead
        handler = logger.registered_handler
        previous_stream = handler.setStream(log) if isinstance(handler, logging.StreamHandler) else None
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        try:
            yield terminal
        finally:
            sys.stdout, sys.stderr = saved
            if isinstance(handler, logging.StreamHandler) and previous_stream is not None:
                handler.setStream(previous_stream)
