"""The dead-letter queue: look at what waits there, and move it back to the submissions queue.

**Peek** receives messages with a short visibility timeout and makes each visible again as soon as it
is read (``ChangeMessageVisibility`` to 0), so the processor's redrive or another operator never waits
for a look; it deletes nothing. Each receive adds one to a message's ``ApproximateReceiveCount``.
A message expires a retention period after its ORIGINAL send to the submissions queue (SQS keeps the
``SentTimestamp`` when it moves a message to the DLQ), so what is left of its life is
``SentTimestamp + MessageRetentionPeriod - now``, not a period after it arrived in the DLQ.

**Redrive** is a bounded receive, send, delete loop at a chosen rate, rather than SQS's own
``StartMessageMoveTask``: the move task cannot be exercised by the local stack (moto does not
implement it), so it could not be tested here, and the loop adds what the task lacks: a message is
deleted from the DLQ only after SQS took its copy (a failed send leaves it visible in the DLQ), each
copy carries a ``RedrivenFrom`` attribute naming the message it came from (unless the body leaves no
room for it under SQS's 1 MiB, which counts attributes too: then it goes without, and is reported),
and the run ends after the number of messages the DLQ held when it started (or ``--limit``), even if
messages keep coming.
Like the move task, it starts each message's retention clock again. A copy sent whose original could
not be deleted is delivered twice: the ledger publishes it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.bodies import BodyView, inspect_body
from ops.pacing import Pacer
from ops.sending import Outgoing, send

PEEK_VISIBILITY_SECONDS = 30
"""How long a peeked message is hidden at most, if the tool dies before it makes it visible again."""
MOVE_VISIBILITY_SECONDS = 120
"""How long a message being moved is hidden: long enough to send its copy and delete it."""
RECEIVE_WAIT_SECONDS = 1
"""A short long-poll: it asks every SQS server, so an empty answer means an empty queue."""
EMPTY_RECEIVES_TO_STOP = 2
REDRIVEN_FROM = "RedrivenFrom"
"""Attribute on every redriven copy: the dead-letter message it was copied from."""


@dataclass(frozen=True)
class DeadLetter:
    """One message of the DLQ, as peek shows it."""

    message_id: str
    body: str
    receive_count: int
    sent_at: datetime
    expires_at: datetime
    source_queue: str | None
    sender_id: str | None
    """The ``SenderId`` system attribute: the IAM principal (or account) that sent it."""
    first_received_at: datetime | None
    """The ``ApproximateFirstReceiveTimestamp``: when the processor (or anyone) first received it."""
    attributes: dict[str, str]
    """Message attributes with string values (``HandedBackFrom``, ``ReplayedFrom``, ...)."""
    view: BodyView = field(repr=False)

    def age(self, now: datetime) -> timedelta:
        """Time since the original send."""
        return now - self.sent_at

    def time_left(self, now: datetime) -> timedelta:
        """Time until SQS deletes it (negative: overdue for deletion)."""
        return self.expires_at - now


def retention_seconds(sqs: Any, queue_url: str) -> int:
    """The queue's ``MessageRetentionPeriod``."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["MessageRetentionPeriod"])
    return int(attributes["Attributes"]["MessageRetentionPeriod"])


def depth(sqs: Any, queue_url: str) -> int:
    """Messages visible on the queue (approximate, as SQS reports it)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def dead_letter(message: dict[str, Any], retention: int) -> DeadLetter:
    """A received message as a :class:`DeadLetter` (expiry from its original send and the retention)."""
    system = message.get("Attributes", {})
    sent_at = datetime.fromtimestamp(int(system.get("SentTimestamp", 0)) / 1000, UTC)
    source = system.get("DeadLetterQueueSourceArn")
    first_received = int(system.get("ApproximateFirstReceiveTimestamp", 0) or 0)
    attributes = {
        name: str(value.get("StringValue"))
        for name, value in (message.get("MessageAttributes") or {}).items()
        if "StringValue" in value
    }
    body = str(message.get("Body", ""))
    return DeadLetter(
        message_id=message["MessageId"],
        body=body,
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        sent_at=sent_at,
        expires_at=sent_at + timedelta(seconds=retention),
        source_queue=source.rsplit(":", 1)[-1] if source else None,
        sender_id=str(system["SenderId"]) if system.get("SenderId") else None,
        first_received_at=datetime.fromtimestamp(first_received / 1000, UTC) if first_received else None,
        attributes=attributes,
        view=inspect_body(body),
    )


def receive(sqs: Any, queue_url: str, count: int, visibility: int) -> list[dict[str, Any]]:
    """Up to ``count`` (at most ten) messages with every attribute, hidden for ``visibility`` seconds.

    The system attributes (``SenderId``, ``SentTimestamp``, ``ApproximateReceiveCount``,
    ``ApproximateFirstReceiveTimestamp``, ``DeadLetterQueueSourceArn``) are what peek shows."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(10, count)),
        VisibilityTimeout=visibility,
        WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def make_visible(sqs: Any, queue_url: str, messages: Sequence[dict[str, Any]]) -> None:
    """Make received messages visible again at once (best effort: their timeout ends it anyway)."""
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, message in enumerate(messages[start : start + 10])
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        except Exception:  # noqa: S112 - best effort: the visibility timeout makes them visible soon anyway
            continue


def peek(sqs: Any, queue_url: str, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` messages of the DLQ, each visible again once read; nothing is deleted."""
    retention = retention_seconds(sqs, queue_url)
    seen: dict[str, dict[str, Any]] = {}
    received: list[dict[str, Any]] = []
    empty = 0
    try:  # hidden while the peek lasts (or it would receive the same ones again), visible again after
        for _ in range(_most_receives(limit)):
            if len(seen) >= limit or empty >= EMPTY_RECEIVES_TO_STOP:
                break
            batch = receive(sqs, queue_url, limit - len(seen), PEEK_VISIBILITY_SECONDS)
            received.extend(batch)
            fresh = [message for message in batch if message["MessageId"] not in seen]
            seen.update((message["MessageId"], message) for message in fresh[: limit - len(seen)])
            empty = 0 if fresh else empty + 1
    finally:
        make_visible(sqs, queue_url, received)
    return [dead_letter(message, retention) for message in seen.values()]


@dataclass
class RedriveResult:
    """What a redrive did."""

    moved: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """Message id -> error code, for copies SQS did not take (those messages stay in the DLQ)."""
    not_deleted: list[str] = field(default_factory=list)
    """Messages copied but not deleted from the DLQ (they will be redriven twice; the ledger copes)."""
    without_attribute: list[str] = field(default_factory=list)
    """Messages moved without ``RedrivenFrom``: their body left no room for it under SQS's 1 MiB."""


def redrive(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    *,
    limit: int,
    pacer: Pacer,
    on_batch: Callable[[RedriveResult], None] = lambda _result: None,
) -> RedriveResult:
    """Move up to ``limit`` messages from the DLQ to ``queue_url``, paced; delete each only once copied."""
    result = RedriveResult()
    empty = 0
    for _ in range(_most_receives(limit)):
        handled = result.moved + len(result.failed)
        if handled >= limit or empty >= EMPTY_RECEIVES_TO_STOP:
            break
        batch = receive(sqs, dlq_url, limit - handled, MOVE_VISIBILITY_SECONDS)
        empty = 0 if batch else empty + 1
        if not batch:
            continue
        pacer.take(len(batch))
        copies = [
            Outgoing(
                key=message["MessageId"],
                body=message["Body"],
                attributes=message.get("MessageAttributes") or {},
                added={REDRIVEN_FROM: message["MessageId"]},
            )
            for message in batch
        ]
        taken, errors, stripped = send(sqs, queue_url, copies)
        result.failed.update(errors)
        result.without_attribute.extend(stripped)
        make_visible(sqs, dlq_url, [message for message in batch if message["MessageId"] in errors])
        copied = [message for message in batch if message["MessageId"] in set(taken)]
        result.not_deleted.extend(_delete(sqs, dlq_url, copied))
        result.moved += len(copied)
        on_batch(result)
    return result


def _delete(sqs: Any, queue_url: str, messages: Sequence[dict[str, Any]]) -> Iterator[str]:
    """Delete ``messages``; yield the ids that could not be deleted."""
    for start in range(0, len(messages), 10):
        group = messages[start : start + 10]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(group)]
        try:
            response = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception:  # reported per message below
            yield from (message["MessageId"] for message in group)
            continue
        for entry in response.get("Failed", []):
            yield group[int(entry["Id"])]["MessageId"]


def _most_receives(limit: int) -> int:
    """A bound on receive calls: each one that is not empty brings at least one message."""
    return limit + EMPTY_RECEIVES_TO_STOP + 1
