"""A body as large as the processor accepts (1 MiB) can be redriven and replayed: SQS counts message
attributes into the same 1 MiB, so the tools' own attributes give way when there is no room for them.

moto checks bodies only; ``SizeLimitedSqs`` refuses at the client boundary what SQS would refuse,
counting on its own. The queues are moto's, with SQS's 1 MiB ``MaximumMessageSize``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

from devkit.sqs_limits import SQS_MAX_BYTES, SizeLimitedSqs, counted_bytes
from ops.dlq import REDRIVEN_FROM, redrive
from ops.pacing import Pacer
from ops.quarantine import Found, replay
from ops.sending import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, Outgoing
from telemetry_adapter.quarantine_format import REPLAYED_FROM, REPLAYED_MESSAGE_ID, QuarantinedMessage
from tests.conftest import REGION

ONE_MIB = 1024 * 1024


def queue(sqs: Any, name: str) -> str:
    url: str = sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": str(SQS_MAX_BYTES)})["QueueUrl"]
    return url


def received(sqs: Any, url: str, count: int) -> dict[str, dict[str, Any]]:
    """Body's first character -> the message attributes it arrived with (bounded receives)."""
    messages: list[dict[str, Any]] = []
    for _ in range(10):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        messages.extend(answer.get("Messages", []))
        if len(messages) >= count:
            break
    return {message["Body"][:1]: message.get("MessageAttributes", {}) for message in messages}


def test_the_limits_are_sqs_ones_and_an_added_attribute_gives_way() -> None:
    assert MAX_MESSAGE_BYTES == MAX_BATCH_BYTES == ONE_MIB  # not the old 256 KiB
    full = Outgoing("k", "x" * ONE_MIB, added={REDRIVEN_FROM: "m-1"})
    assert full.fitted() == ({}, [REDRIVEN_FROM])
    original = {"HandedBackFrom": {"DataType": "String", "StringValue": "m-0"}}
    kept = Outgoing("k", "x" * (ONE_MIB - counted_bytes("", original)), attributes=original, added={REDRIVEN_FROM: "m"})
    attributes, left_out = kept.fitted()
    assert (attributes, left_out) == (original, [REDRIVEN_FROM])  # an original attribute is never dropped
    room = Outgoing("k", "x" * (ONE_MIB - 60), added={REPLAYED_MESSAGE_ID: "m" * 36, REPLAYED_FROM: "s3://b/k"})
    attributes, left_out = room.fitted()
    assert (list(attributes), left_out) == ([REPLAYED_MESSAGE_ID], [REPLAYED_FROM])
    assert counted_bytes(room.body, attributes) <= SQS_MAX_BYTES


def test_a_full_size_body_is_redriven_without_its_redriven_from(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    dlq, main = queue(sqs, "submissions-dlq"), queue(sqs, "submissions")
    sqs.send_message(QueueUrl=dlq, MessageBody="x" * ONE_MIB)
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    limited = SizeLimitedSqs(sqs)
    result = redrive(limited, dlq, main, limit=2, pacer=Pacer(1000))
    assert (result.moved, result.failed, limited.refused) == (2, {}, 0)
    assert len(result.without_attribute) == 1
    attributes = received(sqs, main, 2)
    assert attributes["x"] == {}
    assert REDRIVEN_FROM in attributes["{"]


def test_a_full_size_body_is_replayed_without_its_replayed_attributes(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    main = queue(sqs, "submissions")
    at = datetime.now(UTC).isoformat()
    items = [
        Found("rejected/a", QuarantinedMessage("m-full", "x" * ONE_MIB, "unknown_event_type", "events", at)),
        Found("rejected/a", QuarantinedMessage("m-small", "{}", "unknown_event_type", "events", at)),
    ]
    limited = SizeLimitedSqs(sqs)
    result = replay(limited, main, "quarantine", items, pacer=Pacer(1000))
    assert (result.sent, result.failed, limited.refused) == (2, {}, 0)
    assert result.without_attributes == ["rejected/a#m-full"]
    attributes = received(sqs, main, 2)
    assert attributes["x"] == {}
    assert attributes["{"][REPLAYED_MESSAGE_ID]["StringValue"] == "m-small"
    assert attributes["{"][REPLAYED_FROM]["StringValue"] == "s3://quarantine/rejected/a"
