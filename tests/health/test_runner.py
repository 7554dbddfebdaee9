"""The check runner: concurrency, per-check timeout, error verdicts and how statuses aggregate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from botocore.exceptions import ClientError

from health.settings import HealthSettings
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.health_checks import Check, Status, Verdict, run_checks


@pytest.fixture
def never() -> Iterator[threading.Event]:
    """An event set only at teardown, so a 'hung' probe thread ends with the test."""
    event = threading.Event()
    yield event
    event.set()


def sleeper(seconds: float, status: Status = Status.OK) -> Check:
    def probe() -> Verdict:
        time.sleep(seconds)
        return Verdict(status, {"slept": seconds})

    return Check(f"sleep-{seconds}-{status}", probe)


def test_checks_run_concurrently() -> None:
    # Four probes that each wait for all four to be running: run one after another, the first would
    # wait alone until the barrier's timeout and every probe would fail.
    barrier = threading.Barrier(4, timeout=10)

    def meet() -> Verdict:
        barrier.wait()
        return Verdict(Status.OK)

    report = run_checks([Check(f"probe-{n}", meet) for n in range(4)], timeout_seconds=20)
    assert report.status is Status.OK
    assert [result.status for result in report.checks] == [Status.OK] * 4


def test_a_hung_check_is_failing_with_timeout_and_the_answer_does_not_wait(never: threading.Event) -> None:
    started, finished = threading.Event(), threading.Event()

    def hung_probe() -> Verdict:
        started.set()
        never.wait(30)
        finished.set()
        return Verdict(Status.OK)

    hung = Check("hung", hung_probe)
    report = run_checks([hung, sleeper(0.01)], timeout_seconds=0.3)
    # The answer came while the hung probe was still running: the runner did not wait for it.
    assert started.is_set()
    assert not finished.is_set()
    by_name = {result.name: result for result in report.checks}
    assert by_name["hung"].as_json() == {"status": "failing", "latency_ms": 300.0, "reason": "timeout"}
    assert by_name["sleep-0.01-ok"].status is Status.OK
    assert report.status is Status.FAILING


def test_an_exception_is_a_failing_verdict_naming_only_the_error_class() -> None:
    def broken() -> Verdict:
        raise ConnectionRefusedError("connect to db.internal.example:5432 as admin failed")

    result = run_checks([Check("broken", broken)], timeout_seconds=1).checks[0]
    assert result.as_json() | {"latency_ms": 0} == {
        "status": "failing",
        "latency_ms": 0,
        "reason": "error",
        "error": "ConnectionRefusedError",
    }


def test_an_aws_error_is_named_by_its_code() -> None:
    def denied() -> Verdict:
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "arn:aws:iam::123:role/x"}}, "GetQueueAttributes"
        )

    result = run_checks([Check("denied", denied)], timeout_seconds=1).checks[0]
    assert (result.status, result.details) == (Status.FAILING, {"reason": "error", "error": "AccessDenied"})


def test_a_timeout_raised_by_the_probe_reads_as_timeout() -> None:
    def slow() -> Verdict:
        raise TimeoutError("socket timed out")

    assert run_checks([Check("slow", slow)], timeout_seconds=1).checks[0].details == {"reason": "timeout"}


def returning(status: Status) -> Callable[[], Verdict]:
    return lambda: Verdict(status)


@pytest.mark.parametrize(
    ("statuses", "critical", "expected"),
    [
        ((Status.OK, Status.OK), True, Status.OK),
        ((Status.OK, Status.DEGRADED), True, Status.DEGRADED),
        ((Status.DEGRADED, Status.FAILING), True, Status.FAILING),
        ((Status.OK, Status.FAILING), False, Status.DEGRADED),
        ((Status.DEGRADED, Status.DEGRADED), False, Status.DEGRADED),
    ],
)
def test_overall_status_is_the_worst_with_non_critical_capped(
    statuses: tuple[Status, Status], critical: bool, expected: Status
) -> None:
    checks = [
        Check("first", lambda: Verdict(Status.OK)),
        *[Check(f"c{n}", returning(status), critical=critical) for n, status in enumerate(statuses)],
    ]
    report = run_checks(checks, timeout_seconds=1)
    assert report.status is expected
    assert [result.status for result in report.checks[1:]] == list(statuses)


def test_no_checks_is_ok() -> None:
    assert run_checks([], timeout_seconds=1).as_json() == {"status": "ok", "checks": {}}


def test_settings_defaults_and_validation() -> None:
    settings = HealthSettings.from_env({})
    assert (settings.check_timeout_ms, settings.heartbeat_max_age_seconds, settings.stream_name) == (2_000, 900, None)
    assert HealthSettings.from_env({"HEALTH_CHECK_TIMEOUT_MS": "750"}).check_timeout_seconds == 0.75
    for name, value in (
        ("HEALTH_CHECK_TIMEOUT_MS", "0"),
        ("HEARTBEAT_MAX_AGE_SECONDS", "-5"),
        ("HEALTH_CHECK_TIMEOUT_MS", "x"),
    ):
        with pytest.raises(ConfigurationError, match=name):
            HealthSettings.from_env({name: value})
