"""When a message that failed for a transient reason comes back, and how long valid data may wait.

With partial batch responses, the SQS event source mapping makes a failed message visible again after
the queue's visibility timeout, at a fixed pace, so ``maxReceiveCount`` receives span only minutes:
a ledger or Kinesis outage longer than that would move valid data to the dead-letter queue. Instead,
the processor sets each failed message's visibility to a delay that grows with its receive count
(exponential, capped, with jitter so that a fleet of failed messages does not return in lock-step).

The same arithmetic sizes the queue at synth time: ``maxReceiveCount`` is the smallest number of
receives whose guaranteed waits between the first receive and the last add up to the stack's outage
tolerance, so a message that failed when an outage began still has a receive after it ended. The
tolerance covers failures the handler reports; an invocation that crashes or times out as a whole
leaves its messages to the queue's visibility timeout (and pages through the ``ProcessorErrors``
alarm).
"""

from __future__ import annotations

import random

MAX_VISIBILITY_SECONDS = 43_200
"""SQS's longest visibility timeout (12 hours)."""
LONGEST_BATCHING_WINDOW_SECONDS = 300
"""The event source mapping's longest ``MaximumBatchingWindowInSeconds``."""
LONGEST_INVOCATION_SECONDS = 900
"""Lambda's longest function timeout."""
MAX_BACKOFF_SECONDS = MAX_VISIBILITY_SECONDS - LONGEST_BATCHING_WINDOW_SECONDS - LONGEST_INVOCATION_SECONDS
"""The longest backoff the processor asks for (42,000 s).

SQS holds a message's visibility to 12 hours from its receive, counting the time it has already been in
flight, and rejects a change past that. The backoff is set at the end of the invocation, up to a
batching window plus a whole invocation after the receive; a longer delay would be refused, and the
message would come back after the visibility timeout instead, spending a receive early."""


def nominal_delay_seconds(receive_count: int, base_seconds: int, cap_seconds: int) -> int:
    """``min(cap, base * 2 ** (receive_count - 1))``, within what SQS accepts (``MAX_BACKOFF_SECONDS``)."""
    exponent = min(max(receive_count, 1) - 1, 32)
    return int(min(cap_seconds, base_seconds * 2**exponent, MAX_BACKOFF_SECONDS))


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


def guaranteed_retry_span_seconds(max_receive_count: int, base_seconds: int, cap_seconds: int) -> int:
    """The least time between a failing message's first receive and its last, ``max_receive_count``-th, one.

    This, not the time until the message reaches the dead-letter queue, is the outage it rides out: a
    message first received (and failed) when a dependency went down gets its last try after the
    guaranteed halves of the waits that follow its first ``max_receive_count - 1`` receives. The wait
    after the last receive only delays the dead-lettering: nothing is tried during it. An outage that
    is over by the last try costs the message nothing.
    """
    return sum(nominal_delay_seconds(n, base_seconds, cap_seconds) // 2 for n in range(1, max_receive_count))


def receives_for_tolerance(tolerance_seconds: int, base_seconds: int, cap_seconds: int, limit: int = 1_000) -> int:
    """The smallest ``maxReceiveCount`` whose guaranteed retry span covers ``tolerance_seconds``.

    Raises ValueError when even ``limit`` receives (SQS allows up to 1,000) cannot cover it.
    """
    for receives in range(1, limit + 1):
        if guaranteed_retry_span_seconds(receives, base_seconds, cap_seconds) >= tolerance_seconds:
            return receives
    span = guaranteed_retry_span_seconds(limit, base_seconds, cap_seconds)
    raise ValueError(
        f"{limit} receives span at most {span} s with a {base_seconds} s base and a {cap_seconds} s cap, "
        f"less than the {tolerance_seconds} s tolerance"
    )
