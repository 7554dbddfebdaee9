"""The invariant checker: reads the whole stream and the ledger after a run and counts violations.

* ``lost``: valid submissions with any event missing from the stream (must be 0);
* ``order_violations``: first copies of a submission's events not in sequence order (by the shard's
  sequence numbers; a device's events share one shard) or spread over shards (must be 0);
* ``invalid_published``: records of anything but a valid submission (must be 0);
* ``duplicates``: repeated ``(submission, sequence)`` records; allowed only after an ambiguous fault
  (a worker killed, an answer lost, a ledger update that failed), and then only as same-id copies of
  the same event (``duplicate_mismatches`` must be 0);
* ``corrupted``: records whose id, device, type or details differ from the validated submission;
* ``stuck``: ledger rows never completed (must be 0 once leases expired and the queue drained);
* ``invalid_in_ledger``: ledger rows of submissions that were never valid (must be 0).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from telemetry_adapter.records import event_id
from telemetry_adapter.submission import Submission

_EXAMPLES = 5


@dataclass
class InvariantReport:
    """Counts of each invariant's violations, with a few example submission ids for each."""

    records: int = 0
    lost: int = 0
    order_violations: int = 0
    invalid_published: int = 0
    duplicates: int = 0
    duplicate_mismatches: int = 0
    corrupted: int = 0
    stuck: int = 0
    invalid_in_ledger: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, invariant: str, submission_id: str, count: int = 1) -> None:
        """Count a violation and keep its submission id as an example."""
        setattr(self, invariant, getattr(self, invariant) + count)
        examples = self.examples.setdefault(invariant, [])
        if len(examples) < _EXAMPLES:
            examples.append(submission_id)

    def broken(self, *, duplicates_allowed: bool) -> list[str]:
        """Names of the invariants that do not hold."""
        names = ["lost", "order_violations", "invalid_published", "duplicate_mismatches", "corrupted", "stuck"]
        names.append("invalid_in_ledger")
        if not duplicates_allowed:
            names.append("duplicates")
        return [name for name in names if getattr(self, name)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def check_stream(records: Iterable[Mapping[str, Any]], valid: Mapping[str, Submission]) -> InvariantReport:
    """Check every record read back from the stream against the valid submissions sent."""
    report = InvariantReport()
    by_submission: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        report.records += 1
        submission_id = str(record.get("submission_id"))
        if submission_id not in valid:
            report.note("invalid_published", submission_id)
            continue
        by_submission[submission_id].append(record)
    for submission_id, submission in valid.items():
        _check_submission(report, submission, by_submission.get(submission_id, []))
    return report


def _check_submission(report: InvariantReport, submission: Submission, records: list[Mapping[str, Any]]) -> None:
    sid = submission.submission_id
    if len({record["_shard"] for record in records}) > 1:
        report.note("order_violations", sid)
    records = sorted(records, key=lambda record: (record["_shard"], int(record["_sequence_number"])))
    first: dict[int, Mapping[str, Any]] = {}
    for record in records:
        sequence = record.get("sequence")
        if not isinstance(sequence, int) or not 0 <= sequence < len(submission.events):
            report.note("corrupted", sid)
            continue
        if sequence in first:
            report.note("duplicates", sid)
            if _identity(record) != _identity(first[sequence]):
                report.note("duplicate_mismatches", sid)
            continue
        if sequence != len(first):  # first copies must arrive as 0, 1, 2, ...
            report.note("order_violations", sid)
        first[sequence] = record
        if not _matches(record, submission, sequence):
            report.note("corrupted", sid)
    if len(first) < len(submission.events):
        missing = sorted(set(range(len(submission.events))) - set(first))
        report.note("lost", f"{sid} (missing sequences {missing})")


def _identity(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a legitimate copy shares with the original (only processing_timestamp may differ)."""
    return (
        record.get("id"),
        record.get("event_type"),
        record.get("device_id"),
        json.dumps(record.get("event_details")),
    )


def _matches(record: Mapping[str, Any], submission: Submission, sequence: int) -> bool:
    event_type, details = submission.events[sequence]
    return (
        record.get("id") == event_id(submission.submission_id, sequence)
        and record.get("event_type") == event_type
        and record.get("device_id") == submission.device_id
        and record.get("event_details") == json.loads(details)
    )


def check_ledger(report: InvariantReport, rows: Iterable[tuple[str, bool]], valid: Mapping[str, Submission]) -> None:
    """Add the ledger's findings: ``rows`` are (submission id, completed) for every ledger row."""
    for submission_id, completed in rows:
        if submission_id not in valid:
            report.note("invalid_in_ledger", submission_id)
        elif not completed:
            report.note("stuck", submission_id)


LEDGER_ROWS_SQL = "SELECT submission_id::text, completed_at IS NOT NULL FROM submission_ledger"
