"""Kinesis helpers: read a whole stream back, and inject faults at the client boundary."""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from typing import Any


def read_stream(client: Any, stream_name: str) -> list[dict[str, Any]]:
    """Every record of every shard, oldest first per shard, as parsed JSON with shard and sequence."""
    found: list[dict[str, Any]] = []
    shards = client.list_shards(StreamName=stream_name)["Shards"]
    for shard in shards:
        iterator = client.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = client.get_records(ShardIterator=iterator, Limit=10_000)
            for record in response["Records"]:
                event = json.loads(record["Data"])
                event["_shard"] = shard["ShardId"]
                event["_sequence_number"] = record["SequenceNumber"]
                found.append(event)
            if not response["Records"] and response.get("MillisBehindLatest", 0) == 0:
                break
            iterator = response.get("NextShardIterator")
    return found


@dataclass
class FaultCounts:
    """Faults a :class:`FlakyKinesis` injected."""

    records_failed: int = 0
    records_throttled: int = 0
    calls_failed: int = 0
    calls_applied_but_lost: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class FlakyKinesis:
    """A Kinesis client wrapper that fails a share of records and calls, like the real service does.

    * ``record_failure_rate``: each record independently comes back with an ErrorCode and is not
      written (half ``ProvisionedThroughputExceededException``, half ``InternalFailure``);
    * ``call_failure_rate``: the whole call raises before anything is written;
    * ``lost_answer_rate``: the call is applied, then raises as if its answer was lost (the ambiguous
      case that makes same-id duplicates legitimate).

    Everything else passes through to the real client, so what the stream holds is what Kinesis kept.
    """

    def __init__(
        self,
        client: Any,
        *,
        record_failure_rate: float = 0.0,
        call_failure_rate: float = 0.0,
        lost_answer_rate: float = 0.0,
        seed: int = 1,
    ) -> None:
        self._client = client
        self.record_failure_rate = record_failure_rate
        self.call_failure_rate = call_failure_rate
        self.lost_answer_rate = lost_answer_rate
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self.faults = FaultCounts()

    def _roll(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Any:
        """PutRecords with injected faults."""
        if self._roll() < self.call_failure_rate:
            with self.faults.lock:
                self.faults.calls_failed += 1
            raise ConnectionError("injected: PutRecords call failed before reaching Kinesis")
        failed = [self._roll() < self.record_failure_rate for _ in Records]
        passed = [record for record, fail in zip(Records, failed, strict=True) if not fail]
        answers = iter(self._client.put_records(StreamName=StreamName, Records=passed)["Records"] if passed else [])
        results: list[dict[str, Any]] = []
        for fail in failed:
            if fail:
                code = "ProvisionedThroughputExceededException" if self._roll() < 0.5 else "InternalFailure"
                with self.faults.lock:
                    self.faults.records_failed += 1
                    self.faults.records_throttled += code.startswith("Provisioned")
                results.append({"ErrorCode": code, "ErrorMessage": "injected"})
            else:
                results.append(next(answers))
        if passed and self._roll() < self.lost_answer_rate:
            with self.faults.lock:
                self.faults.calls_applied_but_lost += 1
            raise TimeoutError("injected: PutRecords applied but its answer was lost")
        return {"FailedRecordCount": sum(failed), "Records": results}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
