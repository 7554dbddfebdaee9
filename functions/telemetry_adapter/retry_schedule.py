"""When a message that failed for a transient reason comes back, and how long valid data may wait.

With partial batch responses, the SQS event source mapping makes a failed message visible again after
the queue's visibility timeout, at a fixed pace, so ``maxReceiveCount`` receives span only minutes:
a ledger or Kinesis outage longer than that would move valid data to the dead-letter queue. Instead,
the processor sets each failed message's visibility to a delay that grows with its receive count
(exponential, capped, with jitter so that a fleet of failed messages does not return in lock-step).

The same arithmetic sizes the queue at synth time: ``maxReceiveCount`` is the smallest number of
receives whose guaranteed waits add up to the stack's outage tolerance. The tolerance covers failures
the handler reports; an invocation that crashes or times out as a whole leaves its messages to the
queue's visibility timeout (and pages through the ``ProcessorErrors`` alarm).
"""

from __future__ import annotations

import random

MAX_VISIBILITY_SECONDS = 43_200
"""SQS's longest visibility timeout (12 hours)."""


def nominal_delay_seconds(receive_count: int, base_seconds: int, cap_seconds: int) -> int:
    """``min(cap, base * 2 ** (receive_count - 1))``, within what SQS accepts."""
    exponent = min(max(receive_count, 1) - 1, 32)
    return int(min(cap_seconds, base_seconds * 2**exponent, MAX_VISIBILITY_SECONDS))


def retry_delay_seconds(
    receive_count: int, base_seconds: int, cap_seconds: int, rng: random.Random | None = None
) -> int:
    """The visibility to give a message that failed on its ``receive_count``-th receive.

    "Equal jitter": half the nominal delay, plus a uniform share of the other half, so the wait is
    spread out yet never shorter than half the nominal delay (which is what the sizing counts on).
    """
    nominal = nominal_delay_seconds(receive_count, base_seconds, cap_seconds)
    half = nominal // 2
    return half + (rng or random).randint(0, nominal - half)


def guaranteed_wait_seconds(max_receive_count: int, base_seconds: int, cap_seconds: int) -> int:
    """The least time a message that fails on every receive spends before it is dead-lettered.

    SQS moves a message to the dead-letter queue when it would be received for the
    ``max_receive_count + 1``-th time, so it waits after each of its ``max_receive_count`` receives.
    """
    return sum(nominal_delay_seconds(n, base_seconds, cap_seconds) // 2 for n in range(1, max_receive_count + 1))


def receives_for_tolerance(tolerance_seconds: int, base_seconds: int, cap_seconds: int, limit: int = 1_000) -> int:
    """The smallest ``maxReceiveCount`` whose guaranteed wait covers ``tolerance_seconds``.

    Raises ValueError when even ``limit`` receives (SQS allows up to 1,000) cannot cover it.
    """
    total = 0
    for receives in range(1, limit + 1):
        total += nominal_delay_seconds(receives, base_seconds, cap_seconds) // 2
        if total >= tolerance_seconds:
            return receives
    raise ValueError(
        f"{limit} receives wait at most {total} s with a {base_seconds} s base and a {cap_seconds} s cap, "
        f"less than the {tolerance_seconds} s tolerance"
    )
