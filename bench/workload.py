"""The batches every case processes: realistic, valid submissions with ids never seen before.

One :class:`Batch` is generated per (run, size) and given to every case in that run, so the handler,
the floor and the Powertools idiom handle exactly the same bytes; the ledger is emptied between cases.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from devkit import fleet
from devkit.lambda_shapes import sqs_event
from telemetry_adapter.config import Limits
from telemetry_adapter.records import EventRecord, build_records, processing_timestamp
from telemetry_adapter.submission import Submission, parse_submission

FLEET_SIZE = 1_000


@dataclass
class Batch:
    """One SQS batch of valid submissions (3 to 5 events of each type)."""

    bodies: list[str]

    @property
    def size(self) -> int:
        """Messages in the batch."""
        return len(self.bodies)

    @cached_property
    def event(self) -> dict[str, Any]:
        """The Lambda-shaped SQS event."""
        return sqs_event(self.bodies)

    @cached_property
    def submissions(self) -> list[Submission]:
        """The validated submissions (precomputed for the floor, which does no decoding)."""
        return [parse_submission(body, Limits()) for body in self.bodies]

    @cached_property
    def records(self) -> list[list[EventRecord]]:
        """Each submission's Kinesis records, exactly as the handler builds them."""
        timestamp = processing_timestamp()
        return [build_records(submission, 0, timestamp) for submission in self.submissions]

    @property
    def event_count(self) -> int:
        """Events in the batch."""
        return sum(len(records) for records in self.records)

    @property
    def longest(self) -> int:
        """Events in the longest submission."""
        return max((len(records) for records in self.records), default=0)


def make_batch(size: int, seed: int) -> Batch:
    """A batch of ``size`` fresh submissions from a fleet of devices; ``seed`` makes the ids new."""
    rng = random.Random(seed)
    devices = fleet.device_ids(min(size, FLEET_SIZE))
    return Batch([fleet.encode(fleet.submission(rng, devices[i % len(devices)])) for i in range(size)])
