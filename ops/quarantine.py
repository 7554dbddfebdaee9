"""The quarantine of rejected messages: find them, read one, send them back to the queue.

The objects are the processor's (``telemetry_adapter.quarantine_format``: gzip JSON Lines of
:class:`QuarantinedMessage`, one object per batch, keys ``rejected/YYYY/MM/DD/HH/<time>-<batch>``), so
a time range is one listing from its first hour's prefix to its last, and each matching object is read
once. A filter on reason, device or submission is applied to the messages inside.

**Replay** sends each chosen body, unchanged, to the submissions queue with attributes saying where
it came from (``ReplayedFrom``: the object, ``ReplayedMessageId``: the id of the message first
rejected), as far
as the body leaves room for them under SQS's 1 MiB, which counts attributes too. The
processor decides again: a body it now accepts is published once, however often it is replayed (the
ledger knows the submission), and one it still rejects is quarantined again. A
``conflicting_duplicate`` is left out unless forced (:func:`without_conflicts` says why), and each
originally rejected message is sent once, not once per earlier replay (:func:`one_per_original`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ops.pacing import Pacer
from ops.sending import Outgoing, send
from telemetry_adapter.quarantine_format import (
    KEY_PREFIX,
    REPLAYED_FROM,
    REPLAYED_MESSAGE_ID,
    QuarantinedMessage,
    decode,
    hour_prefix,
)

CONFLICTING_DUPLICATE = "conflicting_duplicate"
"""The reason replay leaves out unless forced (:func:`without_conflicts`)."""
_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Filters:
    """Which quarantined messages: a time range (of ``quarantined_at``) and optional sets to match."""

    since: datetime
    until: datetime
    reasons: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    submissions: frozenset[str] = frozenset()
    message_ids: frozenset[str] = frozenset()

    def matches(self, message: QuarantinedMessage) -> bool:
        """Whether ``message`` is in the range and in every set that is not empty."""
        when = _parse_time(message.quarantined_at)
        return (
            (when is None or self.since <= when <= self.until)
            and (not self.reasons or message.reason in self.reasons)
            and (not self.devices or (message.device_id or "").lower() in self.devices)
            and (not self.submissions or (message.submission_id or "").lower() in self.submissions)
            and (not self.message_ids or message.message_id in self.message_ids)
        )


@dataclass(frozen=True)
class Found:
    """A quarantined message and the object it is in."""

    key: str
    message: QuarantinedMessage


def object_keys(s3: Any, bucket: str, since: datetime, until: datetime) -> Iterator[str]:
    """Keys of the objects written from ``since``'s hour to ``until``'s, oldest first."""
    first = hour_prefix(since)
    after_last = hour_prefix(until + timedelta(hours=1))
    token: str | None = None
    while True:
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": KEY_PREFIX, "StartAfter": first, "MaxKeys": _PAGE_SIZE}
        if token:
            request["ContinuationToken"] = token
        page = s3.list_objects_v2(**request)
        for item in page.get("Contents", []):
            if item["Key"] >= after_last:
                return
            yield item["Key"]
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return


def read_object(s3: Any, bucket: str, key: str) -> list[QuarantinedMessage]:
    """The messages of one object (ValueError or OSError when it is not in the quarantine's format)."""
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return list(decode(data))


def find(
    s3: Any,
    bucket: str,
    filters: Filters,
    *,
    limit: int,
    on_unreadable: Callable[[str, Exception], None] = lambda _key, _error: None,
) -> Iterator[Found]:
    """Up to ``limit`` messages that match ``filters``, oldest object first; an unreadable object is
    reported to ``on_unreadable`` and skipped."""
    found = 0
    for key in object_keys(s3, bucket, filters.since, filters.until):
        try:
            messages = read_object(s3, bucket, key)
        except (OSError, ValueError, TypeError, EOFError) as error:  # gzip, UTF-8, JSON or shape errors
            on_unreadable(key, error)
            continue
        for message in messages:
            if filters.matches(message):
                yield Found(key, message)
                found += 1
                if found >= limit:
                    return


def without_conflicts(items: Sequence[Found]) -> tuple[list[Found], list[Found]]:
    """The items to replay and the ``conflicting_duplicate`` ones left out.

    Such a body can never be replayed usefully. While the ledger holds the submission's first content
    it is rejected again (and quarantined again); once the ledger's clean-up has deleted that row
    (``ledgerRetentionDays``, 18 days by default, while the quarantine keeps 30), it would be accepted
    and publish a second, different content under the same submission id, and so under event ids
    consumers already hold for other events. The sensor that reused the id is what needs fixing."""
    kept = [item for item in items if item.message.reason != CONFLICTING_DUPLICATE]
    left_out = [item for item in items if item.message.reason == CONFLICTING_DUPLICATE]
    return kept, left_out


def one_per_original(items: Sequence[Found]) -> tuple[list[Found], list[Found]]:
    """The items to replay, one per originally rejected message, and the repeats left out.

    A body still rejected on replay is quarantined again as a new record (naming the original, see
    ``QuarantinedMessage.original_id``). Without this, the next replay over the same range would send
    the original and its copy, and each run would double what it sends and stores. The first item of
    each original is kept: ``find`` yields the oldest first, so that is the original when it is chosen."""
    seen: set[str] = set()
    kept: list[Found] = []
    repeats: list[Found] = []
    for item in items:
        original = item.message.original_id
        if original in seen:
            repeats.append(item)
        else:
            seen.add(original)
            kept.append(item)
    return kept, repeats


@dataclass
class ReplayResult:
    """What a replay sent."""

    sent: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """``<key>#<message id>`` -> error code, for bodies SQS did not take."""
    without_attributes: list[str] = field(default_factory=list)
    """``<key>#<message id>`` of bodies sent without some of their ``Replayed*`` attributes: the body
    left no room for them under SQS's 1 MiB, which counts attributes too."""


def replay(
    sqs: Any,
    queue_url: str,
    bucket: str,
    items: Sequence[Found],
    *,
    pacer: Pacer,
    batch_size: int = 10,
) -> ReplayResult:
    """Send each item's body to ``queue_url``, ``batch_size`` at a time, paced."""
    result = ReplayResult()
    for start in range(0, len(items), batch_size):
        group = items[start : start + batch_size]
        pacer.take(len(group))
        copies = [
            Outgoing(
                key=reference(item),
                body=item.message.body,
                added={REPLAYED_MESSAGE_ID: item.message.original_id, REPLAYED_FROM: f"s3://{bucket}/{item.key}"},
            )
            for item in group
        ]
        taken, errors, stripped = send(sqs, queue_url, copies)
        result.sent += len(taken)
        result.failed.update(errors)
        result.without_attributes.extend(stripped)
    return result


def reference(item: Found) -> str:
    """``<key>#<message id>``: one message of one object."""
    return f"{item.key}#{item.message.message_id}"


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
