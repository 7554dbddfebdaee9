"""Hand a message that made progress back to the queue as a fresh copy (guarantee 7).

Order forces one PutRecords call per event of a submission, so a submission of thousands of events
can need several invocations. Reported as a batch item failure, each of those would count one
receive towards the dead-letter queue although the submission is moving forward. Instead, when the
time budget stops a message whose published prefix grew (and the ledger recorded it), the processor
sends a copy of its body to the queue and acknowledges the original: the copy starts with a fresh
receive count, and the ledger makes it safe (it resumes at the recorded prefix; were the original
redelivered as well, the second copy is suppressed as a duplicate).

One ``SendMessageBatch`` per ten copies, so a batch's I/O stays per batch. Each call starts only while
the invocation can still wait out a whole one (a batch of a hundred needs ten, one after another); a
copy that SQS did not take, or that was not sent for lack of time, is reported as a failure instead,
exactly as without a hand-back. The SQS client honours
``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_SQS`` (boto3 reads them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, cast

from telemetry_adapter.backoff import PARALLEL_CALLS
from telemetry_adapter.errors import error_code
from telemetry_adapter.observability import logger
from telemetry_adapter.time_budget import (
    HANDBACK_CALL_TIMEOUT_MS,
    HANDBACK_CONNECT_TIMEOUT_SECONDS,
    HANDBACK_READ_TIMEOUT_SECONDS,
)
from telemetry_adapter.wall_clock import WallClockLimit

SQS_POOL_CONNECTIONS = 2 * PARALLEL_CALLS
"""Connections of the processor's SQS client (botocore keeps 10): the backoff's calls made together,
with room for the hand-back's and for abandoned calls still holding theirs."""
MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 1024 * 1024
"""SendMessageBatch's limits: ten messages, 1 MiB (1,048,576 bytes) of payload in all, the SQS maximum
since 2025; the stack sets the queue's ``MaximumMessageSize`` to the same (a template test holds them
together), so a group packed to this size is never refused as a whole."""
MAX_MESSAGE_BYTES = 1024 * 1024
"""SQS's limit for one message, its body and its message attributes together (name, type and value
of each count). A body the processor accepts can be up to ``MAX_BODY_BYTES`` (1 MiB) on its own."""
HANDED_BACK_FROM = "HandedBackFrom"
"""Message attribute on a copy: the id of the message it continues (for operators reading a queue).
Left out when the body leaves no room for it under :data:`MAX_MESSAGE_BYTES`: a copy is never refused
for our bookkeeping."""


class SqsClient(Protocol):
    """The one SQS operation the hand-back uses (a boto3 client)."""

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any: ...


@dataclass(frozen=True, slots=True)
class Copy:
    """A message to hand back: its id and its body, sent again unchanged."""

    message_id: str
    body: str


class QueueHandBack:
    """Sends copies to the queue the processor reads (``QUEUE_URL``)."""

    def __init__(
        self, client: SqsClient, queue_url: str, *, call_seconds: float = HANDBACK_CALL_TIMEOUT_MS / 1000
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self.call_seconds = call_seconds
        """Each call's wall-clock limit: past it, its copies count as not taken (a late one is a duplicate
        the ledger suppresses)."""
        self._limit = WallClockLimit("handback")

    def send(
        self, copies: Sequence[Copy], *, may_send: Callable[[], bool] = lambda: True
    ) -> tuple[set[str], dict[str, str]]:
        """Send the copies, one call per group while ``may_send()`` says a whole call still fits the
        invocation (asked before each call: the time check made once for ten calls in a row let the
        invocation outlive its deadline); return the message ids SQS took and, for the copies SQS
        refused, the error code. Copies left unsent for lack of time are in neither."""
        taken: set[str] = set()
        errors: dict[str, str] = {}
        for sized in _groups([_Entry.of(copy) for copy in copies]):
            if not may_send():
                break
            entries = [
                {"Id": str(index), "MessageBody": entry.copy.body, "MessageAttributes": entry.attributes}
                for index, entry in enumerate(sized)
            ]
            for entry in sized:
                if not entry.attributes:
                    logger.info(
                        "hand-back copy sent without its attribute: the body leaves no room for it",
                        extra={"message_id": entry.copy.message_id, "attribute": HANDED_BACK_FROM},
                    )
            group = [entry.copy for entry in sized]
            try:
                send = partial(self._client.send_message_batch, QueueUrl=self.queue_url, Entries=entries)
                response = self._limit.call(send, self.call_seconds)
            except Exception as error:  # the whole call failed: none of these copies exists
                errors.update((copy.message_id, error_code(error)) for copy in group)
                continue
            successful = {entry.get("Id") for entry in response.get("Successful", [])}
            failed = {entry.get("Id"): str(entry.get("Code", "Failed")) for entry in response.get("Failed", [])}
            for index, copy in enumerate(group):
                if str(index) in successful and str(index) not in failed:
                    taken.add(copy.message_id)
                else:
                    errors[copy.message_id] = failed.get(str(index), "NotAcknowledged")
        return taken, errors


def sqs_client() -> SqsClient:
    """A boto3 SQS client with short timeouts and no retries: a hand-back that fails is a failure
    reported to SQS, which redelivers the original; waiting longer could cost the whole invocation."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=HANDBACK_CONNECT_TIMEOUT_SECONDS,
        read_timeout=HANDBACK_READ_TIMEOUT_SECONDS,
        max_pool_connections=SQS_POOL_CONNECTIONS,
    )
    return cast(SqsClient, boto3.client("sqs", config=config))


@dataclass(frozen=True, slots=True)
class _Entry:
    """A copy as sent: its attributes (none when they would not fit) and its size as SQS counts it."""

    copy: Copy
    attributes: dict[str, dict[str, str]]
    size: int

    @classmethod
    def of(cls, copy: Copy) -> _Entry:
        body = len(copy.body.encode("utf-8", errors="surrogatepass"))
        attribute = len(HANDED_BACK_FROM) + len("String") + len(copy.message_id.encode("utf-8"))
        if body + attribute > MAX_MESSAGE_BYTES:
            return cls(copy, {}, body)
        return cls(copy, {HANDED_BACK_FROM: {"DataType": "String", "StringValue": copy.message_id}}, body + attribute)


def _groups(entries: Sequence[_Entry]) -> list[list[_Entry]]:
    """Entries in request-sized groups (at most ten, at most 1 MiB in all, attributes counted)."""
    groups: list[list[_Entry]] = []
    current: list[_Entry] = []
    size = 0
    for entry in entries:
        if current and (len(current) == MAX_ENTRIES_PER_CALL or size + entry.size > MAX_BYTES_PER_CALL):
            groups.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry.size
    if current:
        groups.append(current)
    return groups
