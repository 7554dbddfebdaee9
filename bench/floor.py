"""The I/O floor: the minimal I/O the handler must do for a batch, sent directly with nothing else.

The claim and outcome statements are the ledger's own SQL, sent straight through the ledger's
connection (one round trip each) with their parameters computed beforehand; the PutRecords calls
carry the very records the handler builds, packed beforehand (:mod:`bench.packing`) and sent one
after another. No decoding, no validation, no record building, no bookkeeping: everything the
handler spends beyond this is our own overhead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pg8000.native

from bench.packing import ordered_calls, unordered_calls
from bench.workload import Batch
from telemetry_adapter.collector import collector_paused
from telemetry_adapter.ledger.repository import _CLAIM_SQL, _OUTCOME_SQL

_OWNER = "bench-floor"
_LEASE_SECONDS = 900.0


class Floor:
    """One batch's minimal I/O, precomputed; calling it sends it."""

    def __init__(
        self, connection: pg8000.native.Connection, client: Any, stream_name: str, batch: Batch, *, ordered: bool
    ) -> None:
        submissions = batch.submissions
        self._connection = connection
        self._client = client
        self._stream_name = stream_name
        self._claim: dict[str, Any] = {
            "ids": [s.submission_id for s in submissions],
            "devices": [s.device_id for s in submissions],
            "digests": [s.digest for s in submissions],
            "counts": [len(s.events) for s in submissions],
            "owner": _OWNER,
            "lease_seconds": _LEASE_SECONDS,
        }
        self._outcome: dict[str, Any] = {
            "ids": self._claim["ids"],
            "published": self._claim["counts"],
            "owner": _OWNER,
            "worker": _OWNER,
            "batch_size": batch.size,
            "breaker": "closed",
        }
        packed = ordered_calls(batch.records) if ordered else unordered_calls(batch.records)
        self.calls: Sequence[list[dict[str, Any]]] = [
            [{"Data": record.data, "PartitionKey": record.partition_key} for record in call] for call in packed
        ]

    def __call__(self) -> None:
        """Claim, publish, record the outcome: under the handler's garbage collector policy, so that
        the I/O libraries (and moto, in this process) cost the same here as inside the handler."""
        with collector_paused():
            self._connection.run(_CLAIM_SQL, **self._claim)
            for entries in self.calls:
                self._client.put_records(StreamName=self._stream_name, Records=entries)
            self._connection.run(_OUTCOME_SQL, **self._outcome)
