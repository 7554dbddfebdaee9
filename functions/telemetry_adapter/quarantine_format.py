"""The quarantine's object format: what is kept of a rejected message, and where.

A rejected message is acknowledged (never retried) but not thrown away: its body, exactly as SQS
delivered it, is kept in an S3 bucket with why it was rejected and where it came from, so that a
sensor release the adapter does not understand yet loses nothing, and an operator can replay it once
the adapter does. One object holds the rejected messages of one batch (one S3 call per batch that has
rejections, never one per message): gzip-compressed JSON Lines, one :class:`QuarantinedMessage` per
line, under a key that starts with the hour it was written, so listing a time range is a prefix scan.

The processor writes these objects and the operators' tool reads them; both go through this module,
so the format has one definition. Evolving it: add optional fields only; readers ignore unknown ones.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

KEY_PREFIX = "rejected/"
CONTENT_TYPE = "application/x-ndjson"
CONTENT_ENCODING = "gzip"
FORMAT_VERSION = 1
REPLAYED_FROM = "ReplayedFrom"
"""Message attribute the operators' tool puts on a replayed body: ``s3://<bucket>/<key>`` of the object
it came from. The processor keeps it in the record when it rejects the body again."""
REPLAYED_MESSAGE_ID = "ReplayedMessageId"
"""Message attribute the operators' tool puts on a replayed body: the id of the message first rejected
(a replay of a replay still names the first). Kept in the record like ``ReplayedFrom``, so a later
replay sends each original once, not once per earlier replay."""


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    """One rejected SQS message with its context. ``body`` is the message body, unchanged."""

    message_id: str
    body: str
    reason: str
    """The rejection reason code (the contract's closed set)."""
    field: str
    """The field at fault, or what part of the body (never a value from it)."""
    quarantined_at: str
    """When the processor stored it: ISO 8601, UTC, ``Z``."""
    sender_id: str | None = None
    """SQS ``SenderId``: the IAM principal (or account) that sent the message."""
    sent_at: str | None = None
    """SQS ``SentTimestamp`` as ISO 8601 UTC."""
    receive_count: int | None = None
    """SQS ``ApproximateReceiveCount`` when it was rejected."""
    submission_id: str | None = None
    """Set when the body was parsed far enough to read it."""
    device_id: str | None = None
    """Set when the body was parsed far enough to read it."""
    format_version: int = FORMAT_VERSION
    replayed_from: str | None = None
    """Set when the message was a replay (its ``ReplayedFrom`` attribute): the object it came from."""
    replayed_message_id: str | None = None
    """Set when the message was a replay (its ``ReplayedMessageId`` attribute): the first rejected
    message's id."""

    @property
    def original_id(self) -> str:
        """The id of the message first rejected with this body: its own, unless it was a replay."""
        return self.replayed_message_id or self.message_id


def object_key(written_at: datetime, batch_id: str) -> str:
    """``rejected/YYYY/MM/DD/HH/<timestamp>-<batch id>.jsonl.gz``, UTC: sortable, listable by hour."""
    moment = written_at.astimezone(UTC)
    return f"{KEY_PREFIX}{moment:%Y/%m/%d/%H}/{moment:%Y%m%dT%H%M%S%fZ}-{batch_id}.jsonl.gz"


def hour_prefix(moment: datetime) -> str:
    """The key prefix of every object written in ``moment``'s hour (UTC)."""
    return f"{KEY_PREFIX}{moment.astimezone(UTC):%Y/%m/%d/%H}/"


def encode(messages: Iterable[QuarantinedMessage]) -> bytes:
    """The object's bytes: gzip of one JSON object per line."""
    lines = (json.dumps(asdict(message), ensure_ascii=False, separators=(",", ":")) for message in messages)
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass"), mtime=0)


def decode(data: bytes) -> Iterator[QuarantinedMessage]:
    """The messages in an object's bytes; unknown fields (a newer writer's) are ignored."""
    known = {item.name for item in fields(QuarantinedMessage)}
    # Split on "\n" only: JSON escapes it inside strings, but not other line breaks (U+2028, U+0085)
    # that str.splitlines() would also split on.
    for line in gzip.decompress(data).decode("utf-8", errors="surrogatepass").split("\n"):
        if line.strip():
            raw = json.loads(line)
            yield QuarantinedMessage(**{key: value for key, value in raw.items() if key in known})
