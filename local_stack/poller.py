"""The SQS event source mapping, emulated: poll the queue, invoke the processor, settle the messages.

As the Lambda ESM does for a standard queue with ``ReportBatchItemFailures``: long-poll
ReceiveMessage (up to 10 per call, more calls until the batch size or the batching window is
reached), with the configured visibility timeout and every system attribute; build the Lambda event
from the real messages (``messageId``, ``receiptHandle``, ``ApproximateReceiveCount``...); invoke
with a context whose deadline is the function timeout; delete every message not listed in
``batchItemFailures`` and leave the failures to reappear when their visibility ends (the backoff the
processor set, or else the visibility timeout). An
invocation that raises fails its whole batch, as in Lambda. SQS itself (moto 5 implements it on
receive) moves a message received ``maxReceiveCount`` times to the DLQ instead of receiving it once more.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from devkit.lambda_shapes import LambdaContext
from local_stack.invocation import Handler
from local_stack.tally import Tally
from telemetry_adapter.observability import logger

WAIT_TIME_SECONDS = 2
"""Long-poll wait per ReceiveMessage (the ESM uses up to 20 s; 2 s keeps shutdown prompt)."""
_RECEIVE_MAX = 10
_DELETE_MAX = 10
_ERROR_PAUSE_SECONDS = 1.0


class Poller:
    """One concurrent execution of the function, fed by the queue, on a thread."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        tally: Tally,
        *,
        batch_size: int,
        batching_window: float,
        visibility_timeout: int,
        function_timeout: float,
        region: str = "us-east-1",
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._tally = tally
        self._batch_size = batch_size
        self._window = batching_window if batch_size <= _RECEIVE_MAX else max(1.0, batching_window)
        self._visibility_timeout = visibility_timeout
        self._timeout_ms = int(function_timeout * 1000)
        self._region = region
        self._queue_arn = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)
        self.idle = threading.Event()
        """Set while the last receive found the queue empty."""
        self.acknowledged: set[str] = set()
        """Message ids deleted from the queue (acknowledged): what is not here is still on SQS."""

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the current invocation (never abandons a batch half-settled)."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("poller: SQS call failed; retrying")
                self._tally.add(poll_errors=1)
                self._stop.wait(_ERROR_PAUSE_SECONDS)

    def poll_once(self) -> int:
        """Receive one batch and invoke the function with it; return the number of messages."""
        if not self._queue_arn:
            self._queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        messages = self._receive_batch()
        if not messages:
            self.idle.set()
            return 0
        self.idle.clear()
        self._invoke(messages)
        return len(messages)

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages = self._receive(min(_RECEIVE_MAX, self._batch_size), WAIT_TIME_SECONDS)
        window_ends = time.monotonic() + self._window
        while messages and len(messages) < self._batch_size and not self._stop.is_set():
            more = self._receive(min(_RECEIVE_MAX, self._batch_size - len(messages)), 0)
            messages.extend(more)
            if not more:
                if time.monotonic() >= window_ends:
                    break
                time.sleep(min(0.1, max(0.0, window_ends - time.monotonic())))
        return messages

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            VisibilityTimeout=self._visibility_timeout,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(message) for message in messages]}
        self._tally.add(invocations=1, received=len(messages))
        try:
            response = self._handler(event, LambdaContext(timeout_ms=self._timeout_ms))
            failed = {str(item["itemIdentifier"]) for item in response.get("batchItemFailures", [])}
        except Exception:
            logger.exception("invocation failed; the whole batch stays on the queue")
            self._tally.add(invocation_errors=1)
            failed = {str(message["MessageId"]) for message in messages}
        done = [message for message in messages if message["MessageId"] not in failed]
        deleted = self._delete(done)
        self._tally.add(acknowledged=deleted, failed=len(messages) - len(done))

    def _delete(self, messages: list[dict[str, Any]]) -> int:
        deleted = 0
        for start in range(0, len(messages), _DELETE_MAX):
            chunk = messages[start : start + _DELETE_MAX]
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(chunk)
            ]
            response = self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
            successful = response.get("Successful", [])
            deleted += len(successful)
            self.acknowledged.update(str(chunk[int(entry["Id"])]["MessageId"]) for entry in successful)
            for failure in response.get("Failed", []):
                logger.warning("delete failed; the message will be redelivered", extra={"code": failure.get("Code")})
        return deleted

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """The Lambda SQS event record for one received message."""
        body = str(message["Body"])
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": {name: str(value) for name, value in message.get("Attributes", {}).items()},
            "messageAttributes": {
                name: _lambda_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API message attribute -> the lower-camel-case shape Lambda events carry."""
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": value.get("BinaryValue"),
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType", "String"),
    }
