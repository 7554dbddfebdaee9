"""How many PutRecords calls the ordering guarantee requires (guarantee 2, docs/contract.md), computed offline.

The rule: a call carries at most one event of any submission and is filled, up to 500 records and
5 MiB, with the next unpublished event of as many submissions as fit, longest submissions first.
Sequential and fault-free, that is round-robin over a queue of submissions.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from telemetry_adapter.publisher import MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL
from telemetry_adapter.records import EventRecord


def ordered_calls(submissions: Sequence[Sequence[EventRecord]]) -> list[list[EventRecord]]:
    """The calls, in order, that publish every submission's records under the ordering rule."""
    queue = deque(sorted(((records, 0) for records in submissions if records), key=lambda item: -len(item[0])))
    calls: list[list[EventRecord]] = []
    while queue:
        call: list[EventRecord] = []
        taken: list[tuple[Sequence[EventRecord], int]] = []
        size = 0
        while queue and len(call) < MAX_RECORDS_PER_CALL:
            records, sent = queue[0]
            record = records[sent]
            if call and size + record.size > MAX_BYTES_PER_CALL:
                break
            queue.popleft()
            call.append(record)
            size += record.size
            taken.append((records, sent + 1))
        calls.append(call)
        queue.extend(item for item in taken if item[1] < len(item[0]))
    return calls


def unordered_calls(submissions: Sequence[Sequence[EventRecord]]) -> list[list[EventRecord]]:
    """The same records with no ordering rule: ``ceil(events / 500)`` full calls (5 MiB permitting)."""
    flat = [record for records in submissions for record in records]
    return [flat[i : i + MAX_RECORDS_PER_CALL] for i in range(0, len(flat), MAX_RECORDS_PER_CALL)]


def lower_bound(event_counts: Sequence[int]) -> int:
    """Guarantee 2's ``max(longest submission, ceil(events / 500))``."""
    return max(max(event_counts, default=0), math.ceil(sum(event_counts) / MAX_RECORDS_PER_CALL))
