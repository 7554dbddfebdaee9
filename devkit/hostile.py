"""Hostile message bodies at any size, and two ways to tell linear decoding cost from worse.

* :func:`line_events_per_byte` counts the Python lines the decoder executes (``sys.settrace``): an
  exact, repeatable count, whatever else the machine does, so ``make test`` can assert on it. It sees
  work done in Python (our validation loops), not work inside C (the JSON scanner, ``re``).
* :func:`timed_growth` times the whole decode, C included, against ``json.loads`` on the same
  bodies. Timings on a shared machine are noisy, so this runs in ``make chaos`` (reported, and a
  verdict), never as a test assertion.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from types import FrameType
from typing import Any

from devkit import fleet
from telemetry_adapter.config import MIB, Limits
from telemetry_adapter.rejections import Rejected
from telemetry_adapter.submission import _canonical_ip, parse_submission

SMALL = 128 * 1024
LARGE = MIB - 4096
# Accept every size the builders make, so the whole document is really decoded and validated.
SCALE_LIMITS = Limits(max_body_bytes=MIB, max_events=1_000_000, max_depth=64)
_DEVICE = fleet.device_ids(1)[0]


def _filled(prefix: str, unit: str, suffix: str, size: int) -> str:
    return prefix + unit * ((size - len(prefix) - len(suffix)) // len(unit)) + suffix


def _many_events(size: int) -> str:
    head = f'{{"submission_id":"{fleet.device_ids(2)[1]}","device_id":"{_DEVICE}",'
    head += '"time_created":"2024-03-05T03:49:51","events":{"network_connection":['
    unit = '{"source_ip":"10.0.0.1","destination_ip":"2606:4700::1111","destination_port":443},'
    body = _filled(head, unit, "", size - 3).rstrip(",")
    return body + "]}}"


HOSTILE_BUILDERS: dict[str, Callable[[int], str]] = {
    "deep_nesting": lambda size: _filled('{"a":', "[", "", size // 2) + "]" * (size // 2 - 5) + "}",
    "gigantic_string": lambda size: _filled('{"submission_id":"', "a", '"}', size),
    "unicode_escapes": lambda size: _filled('{"noise":"', "\\u00e9\\ud800", '"}', size),
    "wide_object": lambda size: "{" + ",".join(f'"{i:032d}":0' for i in range(size // 40)) + "}",
    "huge_numbers": lambda size: _filled('{"noise":[', "1e400,", "0]}", size),
    "control_chars": lambda size: _filled('{"noise":"', "\\u0000\\u001f", '"}', size),
    "many_events": _many_events,
    "base64_of_many_events": lambda size: base64.b64encode(_many_events(size * 3 // 4).encode()).decode(),
}
"""Body builders by kind: ``HOSTILE_BUILDERS[kind](size)`` is a body of about ``size`` characters."""


def decode(body: str) -> None:
    """The decoder under test: decode and validate, a rejection being a normal outcome."""
    with contextlib.suppress(Rejected):
        parse_submission(body, SCALE_LIMITS)


def json_baseline(body: str) -> None:
    """The floor any decoder pays: base64 (when used) and the standard library's JSON parse."""
    text = body if body.startswith("{") else base64.b64decode(body).decode()
    with contextlib.suppress(ValueError, RecursionError):
        json.loads(text)


def executed_lines(work: Callable[[str], Any], body: str) -> int:
    """How many Python lines ``work(body)`` executes: deterministic for the same code and input."""
    _canonical_ip.cache_clear()  # the same cache state for every measurement
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame: FrameType, event: str, arg: Any) -> Any:
        return local

    previous = sys.gettrace()
    sys.settrace(global_)
    try:
        work(body)
    finally:
        sys.settrace(previous)
    return count


def line_growth(work: Callable[[str], Any], small: str, large: str) -> float:
    """How much the executed lines per byte grow from ``small`` to ``large`` (1.0 = linear)."""
    return (executed_lines(work, large) / len(large)) / max(executed_lines(work, small) / len(small), 1e-12)


def peak_bytes(body: str) -> int:
    """Peak memory Python allocates while decoding ``body`` (tracemalloc: allocation sizes, not RSS)."""
    tracemalloc.start()
    try:
        decode(body)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _best_seconds(work: Callable[[str], Any], body: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work(body)
        best = min(best, time.perf_counter() - started)
    return best


def timed_growth(work: Callable[[str], Any], small: str, large: str) -> float:
    """How much the wall time per byte grows from ``small`` to ``large`` (best of a few; noisy)."""
    _best_seconds(work, large, 1)  # warm caches
    return (_best_seconds(work, large, 3) / len(large)) / (_best_seconds(work, small, 7) / len(small))


def linear_cost_report() -> dict[str, Any]:
    """Timed growth of every hostile kind against ``json.loads``'s own growth, for ``make chaos``.

    Linear work grows like the baseline (caches make even ``json.loads`` dearer per byte at 1 MiB);
    quadratic work grows about 8 times faster, so a kind fails past three times the baseline.
    """
    kinds: dict[str, Any] = {}
    for kind, build in sorted(HOSTILE_BUILDERS.items()):
        small, large = build(SMALL), build(LARGE)
        growth = timed_growth(decode, small, large)
        baseline = timed_growth(json_baseline, small, large)
        kinds[kind] = {
            "growth": round(growth, 2),
            "json_loads_growth": round(baseline, 2),
            "linear": growth < 3.0 * max(1.0, baseline),
        }
    return {"kinds": kinds, "ok": all(entry["linear"] for entry in kinds.values())}
