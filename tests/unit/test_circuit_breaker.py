"""The circuit breaker's states on a virtual clock: opens after N failed batches, fails fast, probes once
after the cooldown, closes on a success and opens again on a failure."""

from __future__ import annotations

import pytest

from devkit.lambda_shapes import VirtualClock
from telemetry_adapter.circuit_breaker import Admission, BreakerState, CircuitBreaker, Outcome, batch_outcome
from telemetry_adapter.config import BreakerSettings

SETTINGS = BreakerSettings(failures_to_open=3, cooldown_seconds=30)


def breaker(settings: BreakerSettings = SETTINGS) -> tuple[CircuitBreaker, VirtualClock]:
    clock = VirtualClock()
    return CircuitBreaker(settings, clock=clock.now), clock


def state(target: CircuitBreaker) -> BreakerState:
    """The state, read through a call (each read asks the clock again)."""
    return target.state


def fail(target: CircuitBreaker, times: int, outcome: Outcome = Outcome.LEDGER_FAILED) -> None:
    for _ in range(times):
        target.record(target.admit(), outcome)


def test_opens_after_the_configured_consecutive_failures_and_refuses() -> None:
    target, _ = breaker()
    fail(target, 2)
    assert state(target) is BreakerState.CLOSED
    fail(target, 1, Outcome.KINESIS_FAILED)
    assert state(target) is BreakerState.OPEN
    assert target.cause is Outcome.KINESIS_FAILED
    assert [target.admit() for _ in range(3)] == [Admission.REFUSED] * 3
    assert target.times_opened == 1


def test_a_success_or_a_silent_batch_in_between() -> None:
    target, _ = breaker()
    fail(target, 2)
    target.record(target.admit(), Outcome.SUCCEEDED)  # resets the count
    fail(target, 2)
    target.record(target.admit(), Outcome.SILENT)  # says nothing: the count stays
    assert state(target) is BreakerState.CLOSED
    fail(target, 1)
    assert state(target) is BreakerState.OPEN


def test_after_the_cooldown_one_batch_probes_and_a_success_closes() -> None:
    target, clock = breaker()
    fail(target, 3)
    clock.advance(29.9)
    assert target.admit() is Admission.REFUSED
    clock.advance(0.1)
    assert state(target) is BreakerState.HALF_OPEN
    assert target.admit() is Admission.PROBE
    assert target.admit() is Admission.REFUSED  # one probe at a time
    assert target.record(Admission.PROBE, Outcome.SUCCEEDED) is BreakerState.CLOSED
    assert target.cause is None
    assert target.admit() is Admission.PASSED


def test_a_failed_probe_opens_again_for_a_whole_cooldown() -> None:
    target, clock = breaker()
    fail(target, 3)
    clock.advance(30)
    assert target.record(target.admit(), Outcome.LEDGER_FAILED) is BreakerState.OPEN
    clock.advance(29)
    assert target.admit() is Admission.REFUSED
    clock.advance(1)
    assert target.admit() is Admission.PROBE
    assert target.times_opened == 2


def test_a_silent_probe_leaves_the_next_batch_to_probe() -> None:
    target, clock = breaker()
    fail(target, 3)
    clock.advance(30)
    assert target.record(target.admit(), Outcome.SILENT) is BreakerState.HALF_OPEN
    assert target.admit() is Admission.PROBE


def test_a_crashed_probe_is_a_failed_probe() -> None:
    target, clock = breaker()
    fail(target, 3, Outcome.KINESIS_FAILED)
    clock.advance(30)
    assert target.admit() is Admission.PROBE
    assert target.abandon(Admission.PROBE) is BreakerState.OPEN  # its batch raised: no outcome will come
    assert target.cause is Outcome.KINESIS_FAILED  # still what opened it
    clock.advance(30)
    assert target.admit() is Admission.PROBE
    assert target.abandon(Admission.PASSED) is BreakerState.HALF_OPEN  # only a probe is settled so


def test_a_probe_never_settled_is_given_up_after_a_cooldown() -> None:
    target, clock = breaker()
    fail(target, 3)
    clock.advance(30)
    assert target.admit() is Admission.PROBE  # its invocation dies without a word
    clock.advance(29.9)
    assert target.admit() is Admission.REFUSED  # still running, as far as anyone knows
    clock.advance(0.1)
    assert target.admit() is Admission.PROBE  # lost: the next batch probes
    assert target.record(Admission.PROBE, Outcome.SUCCEEDED) is BreakerState.CLOSED


def test_refused_batches_and_late_closed_batches_change_nothing() -> None:
    target, clock = breaker()
    passed = target.admit()  # a batch of another thread, admitted while closed
    fail(target, 3)
    target.record(passed, Outcome.SUCCEEDED)  # it ends after the breaker opened: no effect
    target.record(Admission.REFUSED, Outcome.SILENT)
    assert state(target) is BreakerState.OPEN
    clock.advance(30)
    assert state(target) is BreakerState.HALF_OPEN


def test_zero_failures_to_open_never_opens() -> None:
    target, _ = breaker(BreakerSettings(failures_to_open=0))
    fail(target, 1_000)
    assert state(target) is BreakerState.CLOSED
    assert target.admit() is Admission.PASSED


@pytest.mark.parametrize(
    ("admission", "ledger_failed", "claim_skipped", "calls", "sent", "expected"),
    [
        (Admission.NOT_ASKED, False, False, 0, 0, Outcome.SILENT),
        (Admission.REFUSED, False, False, 0, 0, Outcome.SILENT),
        (Admission.PASSED, False, True, 0, 0, Outcome.SILENT),
        (Admission.PASSED, True, False, 3, 3, Outcome.LEDGER_FAILED),
        (Admission.PROBE, False, False, 4, 0, Outcome.KINESIS_FAILED),
        (Admission.PASSED, False, False, 4, 1, Outcome.SUCCEEDED),
        (Admission.PASSED, False, False, 0, 0, Outcome.SUCCEEDED),  # duplicates only: the ledger answered
    ],
)
def test_what_a_batch_says_about_the_dependencies(
    admission: Admission, ledger_failed: bool, claim_skipped: bool, calls: int, sent: int, expected: Outcome
) -> None:
    outcome = batch_outcome(
        admission,
        ledger_failed=ledger_failed,
        claim_skipped=claim_skipped,
        put_calls=calls,
        records_sent=sent,
        cause=Outcome.LEDGER_FAILED,
    )
    assert outcome is expected


@pytest.mark.parametrize(
    ("cause", "calls", "sent", "expected"),
    [
        (Outcome.KINESIS_FAILED, 0, 0, Outcome.SILENT),  # duplicates only: Kinesis was never asked
        (Outcome.KINESIS_FAILED, 2, 1, Outcome.SUCCEEDED),
        (Outcome.KINESIS_FAILED, 2, 0, Outcome.KINESIS_FAILED),
        (Outcome.LEDGER_FAILED, 0, 0, Outcome.SUCCEEDED),  # the ledger answered the claim and the outcome
    ],
)
def test_a_probe_speaks_only_for_the_dependency_it_exercised(
    cause: Outcome, calls: int, sent: int, expected: Outcome
) -> None:
    outcome = batch_outcome(
        Admission.PROBE, ledger_failed=False, claim_skipped=False, put_calls=calls, records_sent=sent, cause=cause
    )
    assert outcome is expected
