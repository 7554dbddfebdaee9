"""Gauges sampled every couple of seconds for the live view: queue depth, DLQ depth, health status."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from typing import Any

from local_stack.resources import queue_depth
from local_stack.tally import Tally

SAMPLE_SECONDS = 2.0
_HEALTH_TIMEOUT_SECONDS = 5.0


def probe_health(url: str) -> str:
    """The health endpoint's ``status`` (``ok``, ``degraded``, ``failing``), or why there is none."""
    try:
        with urllib.request.urlopen(url, timeout=_HEALTH_TIMEOUT_SECONDS) as response:  # noqa: S310 - loopback URL we built
            document: Any = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            document = json.loads(error.read() or b"{}")
        except ValueError:
            return f"http {error.code}"
    except (OSError, ValueError) as error:
        return f"unreachable ({type(error).__name__})"
    status = document.get("status") if isinstance(document, dict) else None
    return str(status) if status else "unknown"


class Gauges:
    """Samples the gauges on a thread into the tally."""

    def __init__(self, sqs: Any, queue_url: str, dlq_url: str, health_url: str | None, tally: Tally) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._health_url = health_url
        self._tally = tally
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gauges", daemon=True)

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(_HEALTH_TIMEOUT_SECONDS + 5)

    def sample(self) -> None:
        """Read each gauge once (a failed read leaves the previous value)."""
        with contextlib.suppress(Exception):  # a failed read shows stale numbers; the next sample tries again
            self._tally.set(queue_depth=queue_depth(self._sqs, self._queue_url).total)
            if self._dlq_url:
                self._tally.set(dlq_depth=queue_depth(self._sqs, self._dlq_url).total)
        if self._health_url:
            self._tally.set(health=probe_health(self._health_url))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_SECONDS)
