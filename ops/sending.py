"""Sending message copies to a queue in batches: ``SendMessageBatch`` of at most ten messages and
1 MiB in all, each copy's outcome known.

SQS counts a message's attributes (name, type and value of each) into the same 1 MiB as its body, per
message and per request. A body the processor accepts can be 1 MiB on its own, so the attributes the
tools add to say where a copy came from (``RedrivenFrom``, ``ReplayedFrom``, ``ReplayedMessageId``)
are bookkeeping that gives way: those that would push a copy over the limit are left out (and
reported), so a valid message is never refused for them. The original attributes of a message are
never dropped: the message fitted with them once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 10
MAX_MESSAGE_BYTES = 1024 * 1024
"""One message, body and attributes, at most: SQS's maximum, and the stack's queues'
``MaximumMessageSize``."""
MAX_BATCH_BYTES = 1024 * 1024
"""One ``SendMessageBatch`` request, every body and attribute, at most (a bigger message goes alone)."""
MAX_ATTRIBUTES = 10
"""SQS's limit of message attributes per message."""


@dataclass(frozen=True)
class Outgoing:
    """One message to send: a key of the caller's, the body unchanged, its message attributes, and
    the string attributes the tool adds (``added``: left out when they would not fit)."""

    key: str
    body: str
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    added: Mapping[str, str] = field(default_factory=dict)

    def fitted(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """The attributes to send (the originals, then each added one while it fits the message size
        and SQS's ten), and the names of the added ones left out for lack of room."""
        attributes = with_attributes(self.attributes, {})
        size = message_bytes(self.body, attributes)
        left_out: list[str] = []
        for name, text in self.added.items():
            if name in attributes:
                continue
            value = {"DataType": "String", "StringValue": text}
            extra = attribute_bytes(name, value)
            if len(attributes) < MAX_ATTRIBUTES and size + extra <= MAX_MESSAGE_BYTES:
                attributes[name] = value
                size += extra
            else:
                left_out.append(name)
        return attributes, left_out


def attribute_bytes(name: str, value: Mapping[str, Any]) -> int:
    """What one message attribute counts towards the size limits: its name, type and value."""
    data = value.get("StringValue")
    raw = value.get("BinaryValue")
    size = len(name.encode("utf-8")) + len(str(value.get("DataType", "")).encode("utf-8"))
    if isinstance(data, str):
        size += len(data.encode("utf-8", errors="surrogatepass"))
    if isinstance(raw, bytes | bytearray):
        size += len(raw)
    elif isinstance(raw, str):
        size += len(raw.encode("utf-8"))
    return size


def message_bytes(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """A message's size as SQS counts it: the body's UTF-8 bytes and every attribute's."""
    return len(body.encode("utf-8", errors="surrogatepass")) + sum(
        attribute_bytes(name, value) for name, value in attributes.items()
    )


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


@dataclass(frozen=True)
class _Sized:
    message: Outgoing
    attributes: dict[str, dict[str, Any]]
    left_out: list[str]
    size: int


def send(sqs: Any, queue_url: str, messages: Sequence[Outgoing]) -> tuple[list[str], dict[str, str], list[str]]:
    """Send every message; return the keys SQS took, for the others the error code, and the keys of
    the messages sent without some of their added attributes (no room for them)."""
    taken: list[str] = []
    errors: dict[str, str] = {}
    stripped: list[str] = []
    for group in _groups([_sized(message) for message in messages]):
        entries = [
            {"Id": str(index), "MessageBody": item.message.body, "MessageAttributes": item.attributes}
            for index, item in enumerate(group)
        ]
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        except Exception as error:  # the whole call failed: none of these exists in the queue
            code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
            errors.update((item.message.key, str(code)) for item in group)
            continue
        successful = {entry["Id"] for entry in response.get("Successful", [])}
        failed = {entry["Id"]: str(entry.get("Code", "Failed")) for entry in response.get("Failed", [])}
        for index, item in enumerate(group):
            if str(index) in successful:
                taken.append(item.message.key)
                if item.left_out:
                    stripped.append(item.message.key)
            else:
                errors[item.message.key] = failed.get(str(index), "NotAcknowledged")
    return taken, errors, stripped


def _sized(message: Outgoing) -> _Sized:
    attributes, left_out = message.fitted()
    return _Sized(message, attributes, left_out, message_bytes(message.body, attributes))


def _groups(messages: Sequence[_Sized]) -> Iterator[list[_Sized]]:
    group: list[_Sized] = []
    size = 0
    for item in messages:
        if group and (len(group) == MAX_ENTRIES or size + item.size > MAX_BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(item)
        size += item.size
    if group:
        yield group
