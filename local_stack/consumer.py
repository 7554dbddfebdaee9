"""A stream consumer: reads every shard continuously with GetRecords and hands records to the checker.

Like a KCL-less consumer in production: one iterator per shard from TRIM_HORIZON, a pause when a
round read nothing. It reports when it has caught up (a round with no records on any shard), so the
run stops it only after everything written has been read.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from local_stack.checker import StreamChecker

_IDLE_PAUSE_SECONDS = 0.2
_ERROR_PAUSE_SECONDS = 1.0
_RECORDS_PER_CALL = 1_000


class StreamConsumer:
    """Reads the stream on a thread until stopped."""

    def __init__(self, kinesis: Any, stream_name: str, checker: StreamChecker) -> None:
        self._kinesis = kinesis
        self._stream_name = stream_name
        self._checker = checker
        self._stop = threading.Event()
        self._idle_rounds = 0
        self._idle_lock = threading.Lock()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading."""
        self._stop.set()
        self._thread.join(timeout)

    def restart_idle_count(self) -> None:
        """Count idle rounds from now on (so only rounds that began after everything was written count)."""
        with self._idle_lock:
            self._idle_rounds = 0

    def caught_up(self) -> int:
        """Consecutive rounds that found nothing new (0 while records are still coming)."""
        with self._idle_lock:
            return self._idle_rounds

    def _run(self) -> None:
        iterators: dict[str, str] = {}
        while not self._stop.is_set():
            try:
                if not iterators:
                    iterators = self._open_iterators()
                read = sum(self._read_shard(iterators, shard) for shard in list(iterators))
            except Exception:  # the endpoint hiccuped; a consumer retries from where it was
                self.errors += 1
                self._stop.wait(_ERROR_PAUSE_SECONDS)
                continue
            with self._idle_lock:
                self._idle_rounds = 0 if read else self._idle_rounds + 1
            if not read:
                self._stop.wait(_IDLE_PAUSE_SECONDS)

    def _open_iterators(self) -> dict[str, str]:
        shards = self._kinesis.list_shards(StreamName=self._stream_name)["Shards"]
        return {
            shard["ShardId"]: self._kinesis.get_shard_iterator(
                StreamName=self._stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for shard in shards
        }

    def _read_shard(self, iterators: dict[str, str], shard: str) -> int:
        response = self._kinesis.get_records(ShardIterator=iterators[shard], Limit=_RECORDS_PER_CALL)
        read_at = time.time()
        for record in response["Records"]:
            try:
                event = json.loads(record["Data"])
            except ValueError:
                event = {}
            self._checker.observe(event if isinstance(event, dict) else {}, read_at)
        if response.get("NextShardIterator"):
            iterators[shard] = response["NextShardIterator"]
        return len(response["Records"])
