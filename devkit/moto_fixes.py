"""Fixes to moto, the stand-in for AWS, where it differs from the real service in ways that matter here."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def serialised_moto_shards() -> Iterator[None]:
    """Make moto's Kinesis shard append atomic, as it is in Kinesis.

    ``moto.kinesis.models.Shard.put_record`` says of itself "not safe for concurrency": two concurrent
    PutRecords on one shard can take the same sequence number, and one record silently replaces the
    other. The publisher runs calls concurrently, so without this the stand-in, not the product, would
    lose records (the chaos suite caught exactly that).
    """
    from moto.kinesis.models import Shard

    original = Shard.put_record
    lock = threading.Lock()

    def put_record(self: Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
        with lock:
            return original(self, partition_key, data, explicit_hash_key)

    Shard.put_record = put_record  # type: ignore[method-assign]
    try:
        yield
    finally:
        Shard.put_record = original  # type: ignore[method-assign]
