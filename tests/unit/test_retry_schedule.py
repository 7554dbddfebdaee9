"""The retry schedule: growing, capped, jittered delays, and the receive count an outage tolerance needs."""

from __future__ import annotations

import random

import pytest

from telemetry_adapter.retry_schedule import (
    LONGEST_BATCHING_WINDOW_SECONDS,
    LONGEST_INVOCATION_SECONDS,
    MAX_BACKOFF_SECONDS,
    MAX_VISIBILITY_SECONDS,
    guaranteed_retry_span_seconds,
    nominal_delay_seconds,
    receives_for_tolerance,
    retry_delay_seconds,
)


def test_nominal_delay_doubles_per_receive_up_to_the_cap() -> None:
    assert [nominal_delay_seconds(n, 30, 900) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]


def test_nominal_delay_never_exceeds_what_sqs_accepts() -> None:
    # SQS counts the time in flight: the backoff, set after a batching window and an invocation at the
    # longest, must still end within 12 hours of the receive.
    assert nominal_delay_seconds(10_000, 60, 10**9) == MAX_BACKOFF_SECONDS
    assert MAX_BACKOFF_SECONDS + LONGEST_BATCHING_WINDOW_SECONDS + LONGEST_INVOCATION_SECONDS <= MAX_VISIBILITY_SECONDS
    assert nominal_delay_seconds(0, 30, 900) == 30  # a missing receive count counts as the first


def test_jittered_delay_stays_between_half_and_all_of_the_nominal_delay() -> None:
    rng = random.Random(3)
    for receive_count in range(1, 12):
        nominal = nominal_delay_seconds(receive_count, 30, 900)
        delays = {retry_delay_seconds(receive_count, 30, 900, rng) for _ in range(200)}
        assert min(delays) >= nominal // 2
        assert max(delays) <= nominal
        assert len(delays) > 1 or nominal < 2  # spread out, not lock-step


def test_the_retry_span_adds_the_half_delays_of_every_receive_but_the_last() -> None:
    # Three receives: waits after the first and the second come before the last try; the third's only
    # delays the dead-lettering.
    assert guaranteed_retry_span_seconds(3, 30, 900) == 15 + 30
    assert guaranteed_retry_span_seconds(1, 30, 900) == 0  # one receive: no retry at all


@pytest.mark.parametrize("tolerance", [60, 3_600, 6 * 3_600, 24 * 3_600])
def test_receives_for_tolerance_is_the_smallest_count_that_covers_it(tolerance: int) -> None:
    receives = receives_for_tolerance(tolerance, 30, 900)
    assert guaranteed_retry_span_seconds(receives, 30, 900) >= tolerance
    assert guaranteed_retry_span_seconds(receives - 1, 30, 900) < tolerance


@pytest.mark.parametrize(("tolerance", "base", "cap"), [(15, 6, 12), (60, 1, 8), (6 * 3_600, 30, 900), (10, 4, 8)])
def test_an_outage_as_long_as_the_tolerance_ends_before_the_last_try_of_a_message_it_caught_first(
    tolerance: int, base: int, cap: int
) -> None:
    # The worst case: the message's first receive fails the moment the outage begins, and every delay
    # takes the shortest the jitter allows. Its receives happen at the running sums of those delays;
    # the last one must come once an outage of the tolerance's length is over.
    receives = receives_for_tolerance(tolerance, base, cap)
    tries_at = [0]
    for receive_count in range(1, receives):
        tries_at.append(tries_at[-1] + nominal_delay_seconds(receive_count, base, cap) // 2)
    assert len(tries_at) == receives
    assert tries_at[-1] >= tolerance


def test_an_impossible_tolerance_is_an_error_naming_the_figures() -> None:
    with pytest.raises(ValueError, match="less than the 100000 s tolerance"):
        receives_for_tolerance(100_000, 1, 2, limit=10)
