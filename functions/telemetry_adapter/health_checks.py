"""Run named health checks concurrently, each under a timeout, and aggregate their verdicts.

A health endpoint is only useful if it answers while a dependency hangs, so every check runs in its
own thread and the runner waits for all of them at most ``timeout_seconds``: a check still running
then is reported ``failing`` with reason ``timeout``, and its thread is left behind rather than
waited for (its own socket timeouts, which callers keep about as short, end it soon after).

The overall status is the worst check status, except that a check marked ``critical=False`` (one
that describes how well the pipeline keeps up rather than whether it can work at all) can make the
answer ``degraded`` but never ``failing``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from telemetry_adapter.errors import error_code


class Status(StrEnum):
    """A check's or the service's health, in increasing order of severity."""

    OK = "ok"
    DEGRADED = "degraded"
    FAILING = "failing"

    @property
    def severity(self) -> int:
        """0 for ok, 1 for degraded, 2 for failing."""
        return _SEVERITY[self]


_SEVERITY = {Status.OK: 0, Status.DEGRADED: 1, Status.FAILING: 2}


@dataclass(frozen=True)
class Verdict:
    """What a probe found: a status and non-secret details (numbers, states, reason codes)."""

    status: Status
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """A named probe. A probe that raises is ``failing`` with the exception's class as its error."""

    name: str
    probe: Callable[[], Verdict]
    critical: bool = True
    """False: this check alone can degrade the service's status but not make it ``failing``."""


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict and how long it took."""

    name: str
    status: Status
    latency_ms: float
    details: Mapping[str, Any]
    critical: bool

    def as_json(self) -> dict[str, Any]:
        """The check's entry in the health answer."""
        return {"status": self.status.value, "latency_ms": round(self.latency_ms, 1), **self.details}


@dataclass(frozen=True)
class HealthReport:
    """Every check's result and the overall status."""

    status: Status
    checks: Sequence[CheckResult]

    def as_json(self) -> dict[str, Any]:
        """``{"status": ..., "checks": {name: {...}}}``."""
        return {"status": self.status.value, "checks": {check.name: check.as_json() for check in self.checks}}


def run_checks(checks: Sequence[Check], timeout_seconds: float) -> HealthReport:
    """Run ``checks`` concurrently; return within about ``timeout_seconds`` whatever they do."""
    if not checks:
        return HealthReport(Status.OK, ())
    # A pool per run: a hung probe keeps its thread, and must not take a worker from the next run.
    executor = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="health-check")
    try:
        futures = [executor.submit(_timed, check) for check in checks]
        wait(futures, timeout=timeout_seconds)
        results = [_result(check, future, timeout_seconds) for check, future in zip(checks, futures, strict=True)]
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return HealthReport(overall_status(results), tuple(results))


def overall_status(results: Sequence[CheckResult]) -> Status:
    """The worst status, with non-critical checks capped at ``degraded``."""
    worst = Status.OK
    for result in results:
        status = result.status
        if not result.critical and status is Status.FAILING:
            status = Status.DEGRADED
        if status.severity > worst.severity:
            worst = status
    return worst


def _timed(check: Check) -> tuple[Verdict, float]:
    started = time.perf_counter()
    try:
        verdict = check.probe()
    except TimeoutError:  # the probe's own timeout (a socket's, a lock's): the same verdict as the runner's
        verdict = Verdict(Status.FAILING, {"reason": "timeout"})
    except Exception as error:  # any failure of a dependency is a verdict, not a crash of the endpoint
        verdict = Verdict(Status.FAILING, {"reason": "error", "error": error_code(error)})
    return verdict, (time.perf_counter() - started) * 1000


def _result(check: Check, future: Future[tuple[Verdict, float]], timeout_seconds: float) -> CheckResult:
    if not future.done():
        verdict, latency_ms = Verdict(Status.FAILING, {"reason": "timeout"}), timeout_seconds * 1000
    else:
        verdict, latency_ms = future.result()
    return CheckResult(check.name, verdict.status, latency_ms, verdict.details, check.critical)
