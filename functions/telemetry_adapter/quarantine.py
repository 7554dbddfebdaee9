"""The quarantine writer: keeps every rejected message of a batch in S3 before it is acknowledged.

A rejected message is never published and never retried, but its body is kept (guarantee 5): one
``PutObject`` per batch that has rejections, never one per message, in the format of
:mod:`telemetry_adapter.quarantine_format` (which the operators' tool reads). The pipeline
acknowledges the batch's rejected messages only once the object is stored; when the write fails, or
the invocation has no time left for it, they stay on the queue and are decided again on redelivery
(after ``maxReceiveCount`` receives the dead-letter queue keeps their bodies).

The S3 client has short timeouts and at most one SDK retry, so the write's longest duration is known
(:data:`~telemetry_adapter.time_budget.QUARANTINE_CALL_TIMEOUT_MS`) and the pipeline makes it only
when the invocation's budget holds it. It honours ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, Protocol, cast

from telemetry_adapter.message_log import MessageIdentity
from telemetry_adapter.observability import logger
from telemetry_adapter.quarantine_format import (
    CONTENT_ENCODING,
    CONTENT_TYPE,
    REPLAYED_FROM,
    REPLAYED_MESSAGE_ID,
    QuarantinedMessage,
    encode,
    object_key,
)
from telemetry_adapter.rejections import Reason
from telemetry_adapter.time_budget import (
    QUARANTINE_CALL_TIMEOUT_MS,
    QUARANTINE_CONNECT_TIMEOUT_SECONDS,
    QUARANTINE_MAX_ATTEMPTS,
    QUARANTINE_READ_TIMEOUT_SECONDS,
)
from telemetry_adapter.wall_clock import WallClockLimit

S3_US_EAST_1_ENDPOINT: Final = "regional"
"""S3 at its regional name in us-east-1 too (``<bucket>.s3.us-east-1.amazonaws.com``). botocore's
default there is the global ``s3.amazonaws.com``, which the VPC's S3 interface endpoint does not
answer for: its private DNS covers the regional names only, and the functions have no other way out
(no NAT), so every write would time out. Other regions resolve to their regional name anyway."""
SERVER_SIDE_ENCRYPTION = "AES256"
"""The bucket's own encryption (S3-managed keys), asked for explicitly on every object."""


class S3Client(Protocol):
    """The one S3 operation the writer uses (a boto3 client)."""

    def put_object(self, **kwargs: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message the pipeline rejected, waiting to be quarantined: who it is, why, and the SQS record
    it came in (its body and attributes are kept as delivered)."""

    identity: MessageIdentity
    reason: Reason
    field: str
    record: Mapping[str, Any]

    def quarantined(self, at: str) -> QuarantinedMessage:
        """The line kept in the quarantine object, stored at ``at``."""
        attributes = self.record.get("attributes")
        attributes = attributes if isinstance(attributes, Mapping) else {}
        body = self.record.get("body")
        return QuarantinedMessage(
            message_id=self.identity.message_id,
            body=body if isinstance(body, str) else "" if body is None else str(body),
            reason=self.reason.value,
            field=self.field,
            quarantined_at=at,
            sender_id=self.identity.sender_id,
            sent_at=_sent_at(attributes.get("SentTimestamp")),
            receive_count=_integer(attributes.get("ApproximateReceiveCount")),
            submission_id=self.identity.submission_id,
            device_id=self.identity.device_id,
            replayed_from=_string_attribute(self.record, REPLAYED_FROM),
            replayed_message_id=_string_attribute(self.record, REPLAYED_MESSAGE_ID),
        )


@dataclass(frozen=True, slots=True)
class StoredObject:
    """Where a batch's rejected messages were stored."""

    bucket: str
    key: str
    count: int


class QuarantineStore:
    """Writes a batch's rejected messages to the quarantine bucket (``QUARANTINE_BUCKET``)."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        call_seconds: float = QUARANTINE_CALL_TIMEOUT_MS / 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.call_seconds = call_seconds
        """The longest one write can take with this client: the pipeline makes it only when the
        invocation has this much left beyond its response slack, and stops waiting for it after this
        long on the wall clock (a failed write: its messages are redelivered)."""
        self._clock = clock
        self._limit = WallClockLimit("quarantine")

    def store(self, rejections: Sequence[Rejection]) -> StoredObject:
        """Put one object holding every rejection; raise whatever the S3 call raised, or
        :class:`~telemetry_adapter.wall_clock.CallAbandoned` when it outlived ``call_seconds``."""
        now = self._clock()
        at = now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        key = object_key(now, uuid.uuid4().hex)
        put = partial(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=encode(rejection.quarantined(at) for rejection in rejections),
            ContentType=CONTENT_TYPE,
            ContentEncoding=CONTENT_ENCODING,
            ServerSideEncryption=SERVER_SIDE_ENCRYPTION,
        )
        self._limit.call(put, self.call_seconds)
        stored = StoredObject(self.bucket, key, len(rejections))
        logger.info("rejected messages quarantined", extra={"bucket": stored.bucket, "key": key, "count": stored.count})
        return stored


def s3_client(
    *,
    connect_timeout: float = QUARANTINE_CONNECT_TIMEOUT_SECONDS,
    read_timeout: float = QUARANTINE_READ_TIMEOUT_SECONDS,
    max_attempts: int = QUARANTINE_MAX_ATTEMPTS,
) -> S3Client:
    """A boto3 S3 client with short timeouts and at most one retry: a write that fails leaves the
    rejected messages on the queue, which is cheaper than an invocation spent waiting for S3."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"us_east_1_regional_endpoint": S3_US_EAST_1_ENDPOINT},
    )
    return cast(S3Client, boto3.client("s3", config=config))


def _string_attribute(record: Mapping[str, Any], name: str) -> str | None:
    """A string message attribute of an SQS event record (Lambda's ``stringValue`` shape), or None."""
    attributes = record.get("messageAttributes")
    value = attributes.get(name) if isinstance(attributes, Mapping) else None
    text = value.get("stringValue") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) else None


def _sent_at(value: object) -> str | None:
    """SQS ``SentTimestamp`` (epoch milliseconds) as ISO 8601 UTC; None when absent or not a number."""
    milliseconds = _integer(value)
    if milliseconds is None:
        return None
    try:
        moment = datetime.fromtimestamp(milliseconds / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _integer(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None
