"""The closed set of reasons for which a submission is dropped.

A rejected submission is acknowledged (never retried, never sent to the DLQ), never published, logged
once at WARNING with its reason code and counted in the ``SubmissionsRejected`` metric dimensioned by
reason. The codes are part of the product's contract: dashboards and alarms key on them, so a code is
never renamed, only added.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a submission was rejected. The values are stable, documented codes."""

    NOT_BASE64 = "not_base64"
    """The body is neither a JSON object nor valid base64."""
    NOT_UTF8 = "not_utf8"
    """The decoded bytes are not valid UTF-8."""
    NOT_JSON = "not_json"
    """The text does not parse as JSON (including NaN/Infinity literals and oversized integers)."""
    NOT_AN_OBJECT = "not_an_object"
    """The JSON document is not an object."""
    TOO_LARGE = "too_large"
    """The body exceeds the configured size limit."""
    TOO_DEEP = "too_deep"
    """The JSON document nests deeper than the configured limit."""
    MISSING_FIELD = "missing_field"
    """A required field is absent (``submission_id``, ``device_id``, ``time_created``, ``events`` or an
    event's required field)."""
    INVALID_UUID = "invalid_uuid"
    """``submission_id`` or ``device_id`` is not a UUID string."""
    INVALID_TIMESTAMP = "invalid_timestamp"
    """``time_created`` is not an ISO 8601 date-time string."""
    INVALID_EVENTS = "invalid_events"
    """``events`` is not an object, an event list is not a list, or an event is not an object."""
    INVALID_STRING = "invalid_string"
    """A string field is not a non-empty string within its length limit, or holds control characters
    or unpaired surrogates."""
    INVALID_IP = "invalid_ip"
    """An IP field is not an IPv4 or IPv6 literal."""
    INVALID_PORT = "invalid_port"
    """``destination_port`` is not an integer from 0 to 65535."""
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    """``events`` holds a key other than ``new_process`` and ``network_connection``."""
    TOO_MANY_EVENTS = "too_many_events"
    """The submission holds more events than the configured limit."""
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    """The submission id was seen before with different content."""


class Rejected(Exception):
    """A submission failed decoding or validation. Carries the reason code and a short detail.

    The detail names the offending field, never its value: values may be huge or hostile, and logs
    must stay small and safe.
    """

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
