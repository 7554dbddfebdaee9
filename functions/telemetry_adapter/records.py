"""Kinesis records built from a validated submission (the output contract).

The record layout is the consumers' contract (``schemas/event-record.schema.json``). The fixed fields
are all values this module controls (UUIDs, an event type name, an integer, UTC timestamps), so the
record is assembled around the details JSON that validation already serialised, instead of serialising
every event a second time; a test parses real output against the schema to keep this honest.

Every record carries ``schema_version``: the version of that layout, an integer. The layout evolves
additively (a new field, a new event type, a new detail) without changing it, so consumers must
ignore fields they do not know; a change that would break a consumer written for version ``N``
(a field removed, renamed or retyped, a meaning changed) ships as version ``N + 1``. The name says
what is versioned (the record's schema, not the adapter's release), and a consumer can branch on it
before reading anything else.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from telemetry_adapter.canonical import utc_timestamp_text
from telemetry_adapter.config import Limits
from telemetry_adapter.submission import EVENT_TYPES, Submission

if TYPE_CHECKING:
    from hashlib import _Hash


SCHEMA_VERSION = 1
"""Version of the record layout (``schema_version`` in every record); see the module docstring."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One Kinesis record: its data and its partition key (the device id, so a device's events share
    a shard)."""

    data: bytes
    partition_key: str

    @property
    def size(self) -> int:
        """Bytes this record counts against the PutRecords request limits."""
        return len(self.data) + len(self.partition_key)


def event_id(submission_id: str, sequence: int) -> str:
    """Deterministic event id: UUIDv5 in the submission's namespace, named by the event's position.

    A record that is ever written twice carries the same id, so consumers can drop the copy.
    """
    return _uuid5_text(_namespace_hash(submission_id), sequence)


def _namespace_hash(submission_id: str) -> _Hash:
    """SHA-1 state after the namespace bytes: copied for each event instead of rehashing them."""
    return hashlib.sha1(uuid.UUID(submission_id).bytes, usedforsecurity=False)


def _uuid5_text(namespace_hash: _Hash, sequence: int) -> str:
    """``str(uuid.uuid5(namespace, str(sequence)))`` without building UUID objects (2.5 times faster;
    a unit test holds it equal to the standard library's)."""
    state = namespace_hash.copy()
    state.update(b"%d" % sequence)
    d = state.digest()
    # RFC 4122: version 5 in the high nibble of byte 6, variant 10 in the high bits of byte 8.
    x = (d[:6] + bytes(((d[6] & 0x0F) | 0x50, d[7], (d[8] & 0x3F) | 0x80)) + d[9:16]).hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def processing_timestamp(now: datetime | None = None) -> str:
    """Backend time in UTC with microseconds and a ``Z`` suffix."""
    moment = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return utc_timestamp_text(moment)


def build_records(submission: Submission, start: int, timestamp: str) -> list[EventRecord]:
    """Records for the events of ``submission`` from position ``start`` (its published prefix) on."""
    namespace = _namespace_hash(submission.submission_id)
    head = _head(submission.device_id, submission.submission_id, submission.time_created, timestamp)
    records = []
    for sequence in range(start, len(submission.events)):
        event_type, details = submission.events[sequence]
        data = _record_text(_uuid5_text(namespace, sequence), event_type, head, sequence, details)
        records.append(EventRecord(data.encode(), submission.device_id))
    return records


def _head(device_id: str, submission_id: str, time_created: str, timestamp: str) -> str:
    return (
        f'"device_id":"{device_id}","submission_id":"{submission_id}",'
        f'"time_created":"{time_created}","processing_timestamp":"{timestamp}",'
    )


def _record_text(event_id_text: str, event_type: str, head: str, sequence: int, details: str) -> str:
    return (
        f'{{"schema_version":{SCHEMA_VERSION},"id":"{event_id_text}","event_type":"{event_type}",{head}'
        f'"sequence":{sequence},"event_details":{details}}}'
    )


MAX_RECORD_BYTES = 1024 * 1024
"""Kinesis' limit for one record: its data and its partition key together."""
_UUID_TEXT = "00000000-0000-0000-0000-000000000000"
_LONGEST_TIME_CREATED = "2024-03-05T03:49:51.123456+05:30:15.123456"  # an offset with seconds and micros
_LONGEST_IP = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
_MAX_PORT_TEXT = "65535"
_UTF8_BYTES_PER_CHARACTER = 4  # the most any accepted character takes (JSON escapes take 2)


def worst_case_record_bytes(limits: Limits) -> int:
    """The largest record (data and partition key) a valid submission can produce under ``limits``.

    A string is at most ``max_*_chars`` characters of up to four bytes each, and never more than the
    body it came in (a character is never shorter in the body than in the record: JSON escapes what
    the record escapes, and a ``\\u`` escape is longer than the character). Checked at start-up, so a
    configuration cannot admit a record that Kinesis would refuse.
    """
    strings = _UTF8_BYTES_PER_CHARACTER * (limits.max_cmdl_chars + limits.max_string_chars)
    process = len('{"cmdl":"","user":""}') + min(strings, limits.max_body_bytes)
    network = len(
        f'{{"source_ip":"{_LONGEST_IP}","destination_ip":"{_LONGEST_IP}","destination_port":{_MAX_PORT_TEXT}}}'
    )
    longest_type = max(EVENT_TYPES, key=len)
    head = _head(_UUID_TEXT, _UUID_TEXT, _LONGEST_TIME_CREATED, processing_timestamp())
    frame = _record_text(_UUID_TEXT, longest_type, head, limits.max_events - 1, "")
    return len(frame.encode()) + max(process, network) + len(_UUID_TEXT)
