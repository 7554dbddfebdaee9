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


@dataclass
class RecordedCall:
    """One PutRecords call as the client saw it: (submission_id, sequence) per record, and which failed."""

    records: list[tuple[str, int]]
    failed: list[bool]
    raised: bool


class RecordingKinesis:
    """Wraps a client and records every PutRecords call, so tests can check the ordering rules."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[RecordedCall] = []
        self._lock = threading.Lock()

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Any:
        """PutRecords, recorded."""
        keys = []
        for record in Records:
            event = json.loads(record["Data"])
            keys.append((event["submission_id"], event["sequence"]))
        try:
            response = self._client.put_records(StreamName=StreamName, Records=Records)
        except Exception:
            with self._lock:
                self.calls.append(RecordedCall(keys, [True] * len(keys), raised=True))
            raise
        failed = ["ErrorCode" in result for result in response["Records"]]
        with self._lock:
            self.calls.append(RecordedCall(keys, failed, raised=False))
        return response

    def order_violations(self) -> list[str]:
        """Sends that broke the rules: two events of a submission in one call, or event k+1 sent before
        event k was acknowledged (calls are recorded when they complete, which for one submission is
        also the order they were sent in, since it never has two calls in flight)."""
        problems = []
        acknowledged: dict[str, int] = {}
        for number, call in enumerate(self.calls):
            submissions = [submission for submission, _ in call.records]
            if len(set(submissions)) != len(submissions):
                problems.append(f"call {number} carries two events of one submission")
            for (submission, sequence), failed in zip(call.records, call.failed, strict=True):
                expected = acknowledged.get(submission)
                if expected is not None and sequence > expected + 1:
                    problems.append(f"call {number}: {submission} event {sequence} before {expected + 1} was acked")
                if not failed:
                    acknowledged[submission] = max(acknowledged.get(submission, -1), sequence)
        return problems
