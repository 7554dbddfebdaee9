"""Lambda-shaped SQS events and contexts, as the event source mapping delivers them."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:submissions"


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    """One record of an SQS event."""
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": f"handle-{uuid.uuid4()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def sqs_event(bodies: Iterable[str]) -> dict[str, Any]:
    """An SQS event holding one record per body."""
    return {"Records": [sqs_record(body) for body in bodies]}


@dataclass
class LambdaContext:
    """A Lambda context with a real deadline, ``timeout_ms`` from its creation."""

    timeout_ms: int = 60_000
    function_name: str = "telemetry-adapter-processor"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        """ARN like the real one (Powertools logs it)."""
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        """Always $LATEST here."""
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left until the deadline."""
        return max(0, int(self.timeout_ms - (time.monotonic() - self.started) * 1000))
