"""Give every failed message a visibility that grows with its receive count (the outage tolerance).

With partial batch responses, the SQS event source mapping leaves a failed message to come back when
the queue's visibility timeout ends: at a fixed pace, so ``maxReceiveCount`` receives would span only
minutes and an outage of the ledger or Kinesis longer than that would dead-letter valid data. Once a
batch is decided, the processor sets each failed message's visibility to
:func:`~telemetry_adapter.retry_schedule.retry_delay_seconds` of its ``ApproximateReceiveCount``
(exponential, capped, equal jitter): the schedule the CDK app sized ``maxReceiveCount`` with, so a
message that fails on every receive reaches the dead-letter queue only after the stack's outage
tolerance.

One ``ChangeMessageVisibilityBatch`` per ten messages, by receipt handle, on the queue the processor
reads (``QUEUE_URL``), made only when the time left can hold one call. Up to ``PARALLEL_CALLS`` calls
go out together (boto3 clients are thread-safe), so the first hundred failed messages of a batch
need no more time than one call; each call after those checks the time again. The calls' wall-clock
limiter holds as many calls, awaited or abandoned, so a hanging endpoint costs at most that many
threads. It is best effort: a call
that fails, or that there is no time for, changes nothing about which messages are acknowledged; the
message just comes back after the visibility timeout, as it would without a backoff (one log line per
batch says how many and why). A message handed back (:mod:`telemetry_adapter.handback`) is acknowledged,
so it is never backed off.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from telemetry_adapter.config import RetrySettings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.errors import error_code
from telemetry_adapter.observability import logger
from telemetry_adapter.retry_schedule import retry_delay_seconds
from telemetry_adapter.time_budget import BACKOFF_CALL_TIMEOUT_MS, response_slack_seconds, sqs_call_allowance_seconds
from telemetry_adapter.wall_clock import WallClockLimit

MAX_ENTRIES_PER_CALL = 10
"""ChangeMessageVisibilityBatch's limit."""
PARALLEL_CALLS = 10
"""Calls one batch makes at once: a batch of 100 (the stack's default) in one round."""
NO_TIME = "NoTimeLeft"
"""The error code of a message whose call the invocation had no time for."""


class VisibilityClient(Protocol):
    """The one SQS operation the backoff uses (a boto3 client)."""

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any: ...


@dataclass
class BackoffResult:
    """How many failed messages got their backoff, and why the others did not (error code: count)."""

    backed_off: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Messages whose visibility could not be set."""
        return sum(self.errors.values())

    def missed(self, code: str, count: int = 1) -> None:
        """Count ``count`` messages not backed off for ``code``."""
        self.errors[code] = self.errors.get(code, 0) + count


@dataclass(frozen=True, slots=True)
class _Target:
    receipt_handle: str
    receive_count: int


class VisibilityBackoff:
    """Sets failed messages' visibility on the queue the processor reads."""

    def __init__(
        self,
        client: VisibilityClient,
        queue_url: str,
        retry: RetrySettings,
        *,
        rng: random.Random | None = None,
        call_seconds: float = BACKOFF_CALL_TIMEOUT_MS / 1000,
    ) -> None:
        self._client = client
        self.call_seconds = call_seconds
        """Each call's wall-clock limit: past it, the call counts as failed (set late, it is harmless)."""
        self._limit = WallClockLimit("backoff", max_abandoned=PARALLEL_CALLS)
        self.queue_url = queue_url
        self._retry = retry
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def delay_for(self, receive_count: int) -> int:
        """The visibility, in seconds, for a message that failed on its ``receive_count``-th receive."""
        return retry_delay_seconds(
            receive_count, self._retry.base_delay_seconds, self._retry.max_delay_seconds, self._rng
        )

    def apply(
        self,
        records: Sequence[Mapping[str, Any]],
        failed_message_ids: Collection[str],
        deadline: Deadline,
        margin_ms: float,
    ) -> BackoffResult:
        """Back off every record whose message id is in ``failed_message_ids``; never raises."""
        result = BackoffResult()
        failed = set(failed_message_ids)
        targets: list[_Target] = []
        for record in records:
            if str(record.get("messageId", "")) not in failed:
                continue
            handle = record.get("receiptHandle")
            if not handle:
                result.missed("NoReceiptHandle")
                continue
            targets.append(_Target(str(handle), _receive_count(record)))
        slack = response_slack_seconds(margin_ms)
        allowance = sqs_call_allowance_seconds(BACKOFF_CALL_TIMEOUT_MS, margin_ms)

        def time_for_a_call() -> bool:
            return deadline.remaining() - slack >= allowance

        if targets and not time_for_a_call():
            result.missed(NO_TIME, len(targets))
        elif targets:
            # Entries (and their jitter) are drawn here, in order. The first round of calls goes out
            # together, on the one check above; a call after those checks the time before it starts.
            requests = [
                self._entries(targets[start : start + MAX_ENTRIES_PER_CALL])
                for start in range(0, len(targets), MAX_ENTRIES_PER_CALL)
            ]
            checks = [None if index < PARALLEL_CALLS else time_for_a_call for index in range(len(requests))]
            outcomes = self._send_all(requests, checks)
            for outcome in outcomes:
                result.backed_off += outcome.backed_off
                for code, count in outcome.errors.items():
                    result.missed(code, count)
        if result.errors:
            logger.warning(
                "visibility backoff not set for some failed messages; they come back after the visibility timeout",
                extra={"backed_off": result.backed_off, "not_backed_off": result.failed, "errors": result.errors},
            )
        return result

    def _send_all(
        self, requests: list[list[dict[str, Any]]], checks: list[Callable[[], bool] | None]
    ) -> list[BackoffResult]:
        """Every request's outcome, the calls made together; never raises (no thread to make them on
        counts every message as not backed off, though some calls may have been made)."""
        if len(requests) == 1:
            return [self._send(requests[0], checks[0])]
        try:
            with ThreadPoolExecutor(min(len(requests), PARALLEL_CALLS), thread_name_prefix="backoff") as pool:
                return list(pool.map(self._send, requests, checks))
        except Exception as error:
            unknown = BackoffResult()
            unknown.missed(error_code(error), sum(len(entries) for entries in requests))
            return [unknown]

    def _entries(self, chunk: Sequence[_Target]) -> list[dict[str, Any]]:
        """One ``ChangeMessageVisibilityBatch`` request's entries, each with its delay drawn."""
        return [
            {
                "Id": str(index),
                "ReceiptHandle": target.receipt_handle,
                "VisibilityTimeout": self.delay_for(target.receive_count),
            }
            for index, target in enumerate(chunk)
        ]

    def _send(self, entries: list[dict[str, Any]], time_left: Callable[[], bool] | None = None) -> BackoffResult:
        """Make one call, within its wall-clock limit, unless ``time_left`` says there is no time for it;
        what it changed, never raising."""
        result = BackoffResult()
        if time_left is not None and not time_left():
            result.missed(NO_TIME, len(entries))
            return result
        try:
            change = partial(self._client.change_message_visibility_batch, QueueUrl=self.queue_url, Entries=entries)
            response = self._limit.call(change, self.call_seconds)
        except Exception as error:  # the whole call failed: none of these messages was changed
            result.missed(error_code(error), len(entries))
            return result
        successful = {str(entry.get("Id")) for entry in response.get("Successful", [])}
        failed = {str(entry.get("Id")): str(entry.get("Code", "Failed")) for entry in response.get("Failed", [])}
        for entry in entries:
            if entry["Id"] in successful and entry["Id"] not in failed:
                result.backed_off += 1
            else:
                result.missed(failed.get(entry["Id"], "NotAcknowledged"))
        return result


def _receive_count(record: Mapping[str, Any]) -> int:
    """The record's ``ApproximateReceiveCount`` (1 when absent or unreadable, as in a hand-made event)."""
    attributes = record.get("attributes")
    raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
    try:
        return max(1, int(str(raw)))
    except ValueError:
        return 1
