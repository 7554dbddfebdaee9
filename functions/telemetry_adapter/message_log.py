"""One log line for each message that is not simply published: why it was rejected, or why it was
not acknowledged, with the ids an on-call engineer searches by.

Every line carries the SQS message id and the sender (the ``SenderId`` attribute: the IAM principal
or account that sent it), plus the submission and device ids whenever they were parsed. A message
that is not acknowledged also says why, in a stable code, and the last error met on its way (a
Kinesis error code or an exception class, never a message text). Bodies and field values are never
logged: they may be huge or hostile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from telemetry_adapter.observability import logger
from telemetry_adapter.rejections import Reason


@dataclass(frozen=True, slots=True)
class MessageIdentity:
    """Who a message is: its SQS id and sender, and, once parsed, its submission and device."""

    message_id: str
    sender_id: str | None = None
    submission_id: str | None = None
    device_id: str | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> MessageIdentity:
        """The SQS part of an event record's identity."""
        attributes = record.get("attributes")
        sender = attributes.get("SenderId") if isinstance(attributes, Mapping) else None
        return cls(str(record.get("messageId", "")), str(sender) if sender else None)

    def fields(self) -> dict[str, str | None]:
        """The log fields."""
        return {
            "message_id": self.message_id,
            "sender_id": self.sender_id,
            "submission_id": self.submission_id,
            "device_id": self.device_id,
        }


class Failure(StrEnum):
    """Why a message was not acknowledged (SQS redelivers it). Stable codes for log queries."""

    DECODER_ERROR = "decoder_error"
    """Decoding raised something other than a rejection: a bug met by this message alone."""
    DEADLINE = "deadline"
    """The invocation's time budget ran out before the message was done (claim or publishing)."""
    GAVE_UP = "gave_up"
    """Kinesis failed its current event on every attempt this invocation allows."""
    LEDGER_FAILED = "ledger_failed"
    """The ledger could not be reached or did not answer (claim or outcome)."""
    BUSY = "busy"
    """Another live worker holds the submission's lease."""
    LEASE_LOST = "lease_lost"
    """Another worker took the lease over before this one recorded the outcome."""
    AWAITS_LEDGER = "awaits_ledger"
    """Another content of the same id came in the same batch: decided on redelivery, by the ledger."""
    KINESIS_BLOCKED = "kinesis_blocked"
    """Not sent: every publishing thread still held a Kinesis call abandoned past its limit."""
    HAND_BACK_FAILED = "hand_back_failed"
    """Stopped after progress, but its copy could not be put back on the queue."""
    BREAKER_OPEN = "breaker_open"
    """The circuit breaker is open (the ledger or Kinesis kept failing): not claimed, not published."""
    QUARANTINE_FAILED = "quarantine_failed"
    """Rejected, but its body could not be stored in the quarantine (write failed, or no time left)."""


def log_rejection(identity: MessageIdentity, reason: Reason, field: str) -> None:
    """The one WARNING line of a rejected (dropped and acknowledged) message."""
    logger.warning("submission rejected", extra={**identity.fields(), "reason": reason.value, "field": field})


def log_failure(
    identity: MessageIdentity,
    failure: Failure,
    *,
    error: str | None = None,
    progress: tuple[int, int] | None = None,
) -> None:
    """The one line of a message reported as a batch item failure: ERROR with the traceback for a
    decoder error (a bug; call it from the ``except`` block), WARNING otherwise (SQS redelivers it,
    and the dead-letter queue alarm covers a lasting failure). ``progress`` is the recorded prefix and
    the event count of a submission that was being published."""
    extra: dict[str, Any] = {**identity.fields(), "failure": failure.value, "last_error": error}
    if progress is not None:
        extra["published"], extra["events"] = progress
    if failure is Failure.DECODER_ERROR:
        logger.error("message not acknowledged", extra=extra, exc_info=True)
    else:
        logger.warning("message not acknowledged", extra=extra)
