"""How much of an invocation the processor keeps in hand, and why that is enough.

The handler stops starting Kinesis calls when less than the safety margin remains, then records the
outcome in the ledger and returns its partial batch response. The margin must therefore hold the
longest Kinesis call already in flight plus one ledger statement, with room for the response; a
smaller margin lets the invocation time out with work half-recorded. The processor checks this at
start-up and the CDK app at synth time, with the same rule.

The SQS calls made after the outcome is recorded (handing a message back, setting a failed message's
backoff visibility) are not part of the margin: each is made only when the time left beyond the
response slack still holds it, and a call skipped for lack of time leaves its message to the
redelivery it would have had without the call. The SDK's timeouts bound the connect and each read, so
each such call is also held to its ``*_CALL_TIMEOUT_MS`` on the wall clock
(:mod:`telemetry_adapter.wall_clock`): past it, it counts as failed.
"""

from __future__ import annotations

KINESIS_CONNECT_TIMEOUT_SECONDS = 2
"""botocore ``connect_timeout`` of the publisher's Kinesis client."""
KINESIS_READ_TIMEOUT_SECONDS = 5
"""botocore ``read_timeout`` of the publisher's Kinesis client."""
KINESIS_CALL_TIMEOUT_MS = (KINESIS_CONNECT_TIMEOUT_SECONDS + KINESIS_READ_TIMEOUT_SECONDS) * 1000
"""The longest the publisher waits for one PutRecords call (no SDK retries: the publisher retries
itself). The SDK's timeouts bound the connect and each read, not the call, so the publisher enforces
this on the wall clock and treats a call past it as failed with its answer lost."""
DEFAULT_STATEMENT_TIMEOUT_MS = 5_000
"""The longest one ledger statement may take (``LEDGER_STATEMENT_TIMEOUT_MS``)."""
MIN_STATEMENT_TIMEOUT_MS = 1_000
"""The shortest ``LEDGER_STATEMENT_TIMEOUT_MS`` accepted: room for a reconnect (``RECONNECT_FLOOR_MS``) and a
statement; a shorter one could never reconnect, and every batch would end as a deadline stop."""
RESPONSE_SLACK_MS = 1_000
"""Building the partial batch response, flushing metrics, returning."""
HANDBACK_CONNECT_TIMEOUT_SECONDS = 1
"""botocore ``connect_timeout`` of the SQS client that hands a message back to the queue."""
HANDBACK_READ_TIMEOUT_SECONDS = 2
"""botocore ``read_timeout`` of that client (no SDK retries)."""
HANDBACK_CALL_TIMEOUT_MS = (HANDBACK_CONNECT_TIMEOUT_SECONDS + HANDBACK_READ_TIMEOUT_SECONDS) * 1000
"""The longest one hand-back call can take: it is made only when this much is left beyond the slack."""
BACKOFF_CALL_TIMEOUT_MS = HANDBACK_CALL_TIMEOUT_MS
"""The longest one ``ChangeMessageVisibilityBatch`` call can take: the backoff shares the hand-back's
SQS client (same timeouts, no SDK retries)."""
QUARANTINE_CONNECT_TIMEOUT_SECONDS = 1
"""botocore ``connect_timeout`` of the S3 client that writes rejected messages to the quarantine."""
QUARANTINE_READ_TIMEOUT_SECONDS = 2
"""botocore ``read_timeout`` of that client."""
QUARANTINE_MAX_ATTEMPTS = 2
"""The quarantine write's attempts: one SDK retry (``PutObject`` of a key of its own is idempotent)."""
QUARANTINE_RETRY_PAUSE_MS = 1_000
"""The longest pause botocore's standard retry mode makes before its first retry."""
QUARANTINE_CALL_TIMEOUT_MS = (
    QUARANTINE_MAX_ATTEMPTS * (QUARANTINE_CONNECT_TIMEOUT_SECONDS + QUARANTINE_READ_TIMEOUT_SECONDS) * 1000
    + QUARANTINE_RETRY_PAUSE_MS
)
"""The longest the quarantine write can take, its retry included: it is made only when this much is
left beyond the slack; otherwise the batch's rejected messages are handed back to SQS unacknowledged."""
STATEMENT_FLOOR_MS = 100
"""Less time than this left for a statement on an open connection: it is not sent."""
RECONNECT_FLOOR_MS = 500
"""Less time than this left for a statement that needs a new connection first: it is not sent."""


def response_slack_seconds(margin_ms: float) -> float:
    """The time ledger statements leave untouched at the end of an invocation: ``RESPONSE_SLACK_MS``,
    or half the margin when the margin is smaller than twice that (only the local runner and the
    chaos run, which compress time on purpose, configure such margins)."""
    return min(RESPONSE_SLACK_MS, margin_ms / 2) / 1000


def sqs_call_allowance_seconds(call_timeout_ms: float, margin_ms: float) -> float:
    """The time left beyond the response slack that an SQS call after the outcome needs before it is
    made: the call's timeout, or half the margin when that is shorter (again only in the runs that
    compress time on purpose; a margin the start-up check accepts is always longer than twice it)."""
    return min(call_timeout_ms, margin_ms / 2) / 1000


def minimum_margin_ms(statement_timeout_ms: int) -> int:
    """The least safety margin that holds a Kinesis call in flight, one ledger statement and the answer."""
    return KINESIS_CALL_TIMEOUT_MS + statement_timeout_ms + RESPONSE_SLACK_MS


def margin_problem(margin_ms: int, statement_timeout_ms: int, function_timeout_ms: int | None = None) -> str | None:
    """Why ``margin_ms`` is not a safe margin, or None when it is."""
    needed = minimum_margin_ms(statement_timeout_ms)
    if margin_ms < needed:
        return (
            f"the safety margin ({margin_ms} ms) must hold one Kinesis call ({KINESIS_CALL_TIMEOUT_MS} ms), one "
            f"ledger statement ({statement_timeout_ms} ms) and the response ({RESPONSE_SLACK_MS} ms): "
            f"at least {needed} ms"
        )
    if function_timeout_ms is not None and margin_ms >= function_timeout_ms:
        return f"the safety margin ({margin_ms} ms) must be below the function timeout ({function_timeout_ms} ms)"
    return None
