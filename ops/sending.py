"""Sending message copies to a queue in batches: ``SendMessageBatch`` of at most ten messages and
256 KiB (the limit of every standard queue; a bigger message goes alone), each copy's outcome known."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
MAX_ATTRIBUTES = 10
"""SQS's limit of message attributes per message."""


@dataclass(frozen=True)
class Outgoing:
    """One message to send: a key of the caller's, the body unchanged, and its message attributes."""

    key: str
    body: str
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def with_attributes(
    original: Mapping[str, Mapping[str, Any]] | None, added: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """``original`` message attributes, as SendMessage takes them, plus ``added`` strings while SQS's limit
    of ten allows (an original attribute is never dropped for one of ours)."""
    attributes: dict[str, dict[str, Any]] = {}
    for name, value in (original or {}).items():
        kept = {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        if "DataType" in kept:
            attributes[name] = kept
    for name, text in added.items():
        if len(attributes) < MAX_ATTRIBUTES and name not in attributes:
            attributes[name] = {"DataType": "String", "StringValue": text}
    return attributes


def send(sqs: Any, queue_url: str, messages: Sequence[Outgoing]) -> tuple[list[str], dict[str, str]]:
    """Send every message; return the keys SQS took, and for the others the error code."""
    taken: list[str] = []
    errors: dict[str, str] = {}
    for group in _groups(messages):
        entries = [
            {"Id": str(index), "MessageBody": message.body, "MessageAttributes": dict(message.attributes)}
            for index, message in enumerate(group)
        ]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as error:  # the whole call failed: none of these exists in the queue
            code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
            errors.update((message.key, str(code)) for message in group)
            continue
        successful = {entry["Id"] for entry in response.get("Successful", [])}
        failed = {entry["Id"]: str(entry.get("Code", "Failed")) for entry in response.get("Failed", [])}
        for index, message in enumerate(group):
            if str(index) in successful:
                taken.append(message.key)
            else:
                errors[message.key] = failed.get(str(index), "NotAcknowledged")
    return taken, errors


def _groups(messages: Sequence[Outgoing]) -> Iterator[list[Outgoing]]:
    group: list[Outgoing] = []
    size = 0
    for message in messages:
        body_size = len(message.body.encode("utf-8", errors="surrogatepass"))
        if group and (len(group) == MAX_ENTRIES or size + body_size > MAX_BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(message)
        size += body_size
    if group:
        yield group
