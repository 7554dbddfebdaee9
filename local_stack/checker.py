"""What a downstream consumer must be able to rely on, checked record by record as the stream is read.

For every submission: its events' first copies arrive in ``sequence`` order (event ``k+1`` never
before event ``k``); each event's ``id`` is the UUIDv5 of the submission id and its sequence, so a
repeated record is recognisable (a permitted duplicate) and a different id for one position is a
violation; no event of a broken submission ever appears; and every valid submission is complete in
the end. The check is independent of the processor's code: it recomputes ids from the output contract.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from local_stack.fleet import SentLog
from local_stack.tally import Tally


@dataclass
class Findings:
    """Violations and oddities found so far."""

    order_violations: int = 0
    id_conflicts: int = 0
    broken_published: int = 0
    unexpected_records: int = 0
    malformed_records: int = 0


@dataclass(frozen=True)
class Unaccounted:
    """Valid submissions whose events are not all in the stream at the end of a run."""

    lost: list[str]
    """Every copy was acknowledged (deleted from the queue): gone for good."""
    unfinished: list[str]
    """A copy is still on SQS (queued, in flight or dead-lettered): not processed yet, not lost."""


@dataclass
class _Progress:
    ids: dict[int, str] = field(default_factory=dict)
    complete: bool = False


class StreamChecker:
    """Checks records of the stream against what the fleet sent."""

    def __init__(self, sent: SentLog, tally: Tally) -> None:
        self._sent = sent
        self._tally = tally
        self._progress: dict[str, _Progress] = {}
        self.findings = Findings()
        self._lock = threading.Lock()

    def observe(self, event: dict[str, Any], read_at: float | None = None) -> None:
        """One record, parsed; ``read_at`` is wall-clock time (defaults to now)."""
        read_at = time.time() if read_at is None else read_at
        try:
            submission_id = str(event["submission_id"])
            sequence = int(event["sequence"])
            event_id = str(event["id"])
            expected_id = str(uuid.uuid5(uuid.UUID(submission_id), str(sequence)))
        except (KeyError, TypeError, ValueError):
            with self._lock:
                self.findings.malformed_records += 1
            return
        expected, sent_at, broken = self._sent.lookup(submission_id)
        with self._lock:
            self._tally.add(records_read=1)
            if broken:
                self.findings.broken_published += 1
                return
            if expected is None:
                self.findings.unexpected_records += 1
                return
            if event_id != expected_id:
                self.findings.id_conflicts += 1
            progress = self._progress.setdefault(submission_id, _Progress())
            if sequence in progress.ids:
                self._tally.add(duplicate_records=1)
                if progress.ids[sequence] != event_id:
                    self.findings.id_conflicts += 1
                return
            if sequence > len(progress.ids):
                self.findings.order_violations += 1  # event k arrived while an earlier one is missing
            progress.ids[sequence] = event_id
            if not progress.complete and len(progress.ids) >= expected:
                progress.complete = True
                self._tally.add(submissions_seen_complete=1)
                if sent_at is not None:
                    self._tally.add_latency((read_at - sent_at) * 1000)

    def incomplete(self) -> list[str]:
        """Valid submissions sent whose events have not all been read."""
        with self._sent.lock:
            expected = dict(self._sent.expected)
        with self._lock:
            return [
                submission_id
                for submission_id in expected
                if not (submission_id in self._progress and self._progress[submission_id].complete)
            ]

    def unaccounted(self, acknowledged: set[str]) -> Unaccounted:
        """The incomplete valid submissions, split by whether SQS still holds a copy of them.

        ``acknowledged`` holds the message ids the poller deleted. A submission with a copy not among
        them is unfinished: still in the queue (visible or in flight) or moved to the dead-letter queue,
        so its events may yet come. One whose every copy was acknowledged is lost: nothing can bring it back.
        """
        incomplete = self.incomplete()
        with self._sent.lock:
            copies = {submission_id: set(self._sent.copies.get(submission_id, ())) for submission_id in incomplete}
        unfinished = [submission_id for submission_id in incomplete if copies[submission_id] - acknowledged]
        waiting = set(unfinished)
        return Unaccounted([submission_id for submission_id in incomplete if submission_id not in waiting], unfinished)

    def snapshot(self) -> Findings:
        """A copy of the findings."""
        with self._lock:
            return Findings(**vars(self.findings))
