"""What a message body holds, read with the product's own decoder, never raising on garbage.

A dead-lettered message is a submission that kept failing for a transient reason, a quarantined one
was rejected; either way the operator wants its submission and device ids and whether the adapter
accepts it. The decoder (``telemetry_adapter.submission``) is the one the processor runs, with its
default limits, so "valid" here means what it means to a processor of this version: a deployed
processor of another version may decide otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from telemetry_adapter.config import Limits
from telemetry_adapter.rejections import Rejected
from telemetry_adapter.submission import decode_body, validate_document

VALID = "valid"
_ID_SHOWN_CHARS = 40


@dataclass(frozen=True)
class BodyView:
    """A body as the decoder sees it."""

    verdict: str
    """``valid``, or the rejection reason code (``decoder_error`` if the decoder itself failed)."""
    detail: str = ""
    """The field at fault, when rejected."""
    submission_id: str | None = None
    device_id: str | None = None
    event_count: int | None = None
    """Events in a valid submission."""
    document: dict[str, Any] | None = None
    """The decoded JSON object, when the body is one (valid or not)."""

    @property
    def valid(self) -> bool:
        """Whether the decoder accepts the whole submission."""
        return self.verdict == VALID


def inspect_body(body: object, limits: Limits | None = None) -> BodyView:
    """Decode and validate ``body``; whatever it holds, answer a :class:`BodyView`."""
    limits = limits or Limits()
    try:
        document = decode_body(body, limits)
    except Rejected as rejected:
        return BodyView(rejected.reason.value, rejected.detail)
    except Exception as error:  # the decoder promises Rejected only; an operator's tool must not crash anyway
        return BodyView("decoder_error", type(error).__name__)
    submission_id, device_id = _shown_id(document, "submission_id"), _shown_id(document, "device_id")
    try:
        submission = validate_document(document, limits)
    except Rejected as rejected:
        return BodyView(rejected.reason.value, rejected.detail, submission_id, device_id, document=document)
    except Exception as error:
        return BodyView("decoder_error", type(error).__name__, submission_id, device_id, document=document)
    return BodyView(
        VALID,
        submission_id=submission.submission_id,
        device_id=submission.device_id,
        event_count=len(submission.events),
        document=document,
    )


def _shown_id(document: dict[str, Any], name: str) -> str | None:
    """An id as far as it can be read: canonical when it is a UUID, else shortened text; None if absent."""
    value = document.get(name)
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value[:_ID_SHOWN_CHARS]
