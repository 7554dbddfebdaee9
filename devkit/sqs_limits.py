"""An SQS client that enforces SQS's size limits the way the service does, which moto does not.

SQS counts every message attribute (its name, its data type and its value) into the same 1 MiB as
the body, per message and per ``SendMessageBatch`` request; moto checks the body alone. Wrapped around
a moto client, this refuses at the boundary what the real service would refuse, and counts on its own
(not with the project's accounting, which is what the tests check).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

SQS_MAX_BYTES = 1024 * 1024
"""The largest message, and the largest batch request, SQS takes: 1 MiB."""


def counted_bytes(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """A message as SQS sizes it: body, and each attribute's name, data type and value."""
    size = len(body.encode("utf-8", errors="surrogatepass"))
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        if "StringValue" in value:
            size += len(str(value["StringValue"]).encode("utf-8", errors="surrogatepass"))
        if "BinaryValue" in value:
            size += len(value["BinaryValue"])
    return size


class SizeLimitedSqs:
    """A boto3 SQS client (moto's) that refuses too-long sends, as SQS does; everything else passes."""

    def __init__(self, client: Any, limit: int = SQS_MAX_BYTES) -> None:
        self.client = client
        self.limit = limit
        self.refused = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        total = sum(counted_bytes(entry["MessageBody"], entry.get("MessageAttributes") or {}) for entry in Entries)
        if total > self.limit:
            self.refused += 1
            code, message = "AWS.SimpleQueueService.BatchRequestTooLong", f"{total} bytes"
            raise ClientError({"Error": {"Code": code, "Message": message}}, "SendMessageBatch")
        return self.client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)

    def send_message(self, **request: Any) -> Any:
        size = counted_bytes(request["MessageBody"], request.get("MessageAttributes") or {})
        if size > self.limit:
            self.refused += 1
            message = f"message of {size} bytes is too long"
            raise ClientError({"Error": {"Code": "InvalidParameterValue", "Message": message}}, "SendMessage")
        return self.client.send_message(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
