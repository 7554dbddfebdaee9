"""Kinesis records built from a validated submission (SPEC section 4).

The record layout is the consumers' contract (``schemas/event-record.schema.json``). The fixed fields
are all values this module controls (UUIDs, an event type name, an integer, UTC timestamps), so the
record is assembled around the details JSON that validation already serialised, instead of serialising
every event a second time; a test parses real output against the schema to keep this honest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from telemetry_adapter.submission import Submission


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
    return str(uuid.uuid5(uuid.UUID(submission_id), str(sequence)))


def processing_timestamp(now: datetime | None = None) -> str:
    """Backend time in UTC with microseconds and a ``Z`` suffix."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_records(submission: Submission, start: int, timestamp: str) -> list[EventRecord]:
    """Records for the events of ``submission`` from position ``start`` (its published prefix) on."""
    namespace = uuid.UUID(submission.submission_id)
    head = (
        f'"device_id":"{submission.device_id}","submission_id":"{submission.submission_id}",'
        f'"time_created":"{submission.time_created}","processing_timestamp":"{timestamp}",'
    )
    records = []
    for sequence in range(start, len(submission.events)):
        event_type, details = submission.events[sequence]
        data = (
            f'{{"id":"{uuid.uuid5(namespace, str(sequence))}","event_type":"{event_type}",{head}'
            f'"sequence":{sequence},"event_details":{details}}}'
        )
        records.append(EventRecord(data.encode(), submission.device_id))
    return records
