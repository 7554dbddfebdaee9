"""One 10,000-event submission at 30 ms per PutRecords, through the real handler and an emulated queue.

The ordering guarantee allows one event of a submission per PutRecords call, so such a submission
needs 10,000 sequential calls: about five minutes, five times a 60-second invocation. It must still
complete, in order, and never reach the dead-letter queue. The case runs it the way AWS would, with the
stack's deployed defaults (function timeout, safety margin, batch size and batching window, visibility
timeout, ``maxReceiveCount`` and the retry delays, as ``infra.settings.load_settings`` derives them):
the queue and its DLQ are moto's SQS with the redrive policy, created by ``local_stack``; the event
source mapping is ``local_stack``'s :class:`~local_stack.poller.Poller`; the function is
``processor.handler.lambda_handler`` with the processor's environment (``QUEUE_URL`` included); every
PutRecords call waits ``put_records_ms`` (:func:`bench.latency.kinesis_latency`).

Time between deliveries is fast-forwarded. A message that failed stays invisible until its visibility
timeout (6 minutes by default) or the processor's retry delay ends; waiting for that in real time
would make the case last half an hour and tell nothing more. When the poller finds the queue idle
while a message is still on it, the queue's clock (moto's SQS clock, nothing else) jumps to the moment
the next message becomes visible. The reported time is the real time plus the skipped waits: what the
submission would take in AWS. The handler's own deadline runs on real time, untouched.

The verdict: every event of the submission is on the stream; the first copy of each event comes in
sequence order (copies carry the same id and are allowed after a lost answer); the DLQ is empty; and
no delivery was a redelivery (``ApproximateReceiveCount`` 1 throughout): nothing fails here, so a
higher count means the submission's progress counted towards the DLQ, which a longer submission or a
smaller ``maxReceiveCount`` would turn into a dead letter.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import boto3

from bench.latency import kinesis_latency
from bench.stack import REGION, STREAM, Stack, handler_output_discarded
from devkit import fleet
from devkit.kinesis import read_stream
from infra.settings import load_settings
from local_stack.environment import patched_environ
from local_stack.poller import Poller
from local_stack.resources import create_resources, queue_depth
from local_stack.tally import Tally

EVENTS = 10_000
PUT_RECORDS_MS = 30.0
DEPLOYED = load_settings({})
"""The stack's settings with every context value at its default (derived ones derived)."""
_MOTO_ACCOUNT = "123456789012"


@dataclass
class LongSubmissionResult:
    """What became of the submission."""

    events: int
    put_records_ms: float
    function_timeout_s: int
    max_receive_count: int
    deliveries: int
    """Invocations that received the submission (a re-enqueued copy counts as a new delivery)."""
    highest_receive_count: int
    """The highest ``ApproximateReceiveCount`` a delivery carried: above 1, progress counted towards the DLQ."""
    seconds: float
    """Real time plus the skipped queue waits: the time in AWS."""
    real_seconds: float
    skipped_seconds: float
    events_on_stream: int
    distinct_events: int
    in_order: bool
    dead_lettered: bool
    completed: bool
    stopped_early: str | None = None
    """Why the run gave up before the queue was empty (a bound reached), if it did."""

    @property
    def counted_towards_dlq(self) -> bool:
        """Whether a delivery was a redelivery: nothing failed here, so only progress could have counted."""
        return self.highest_receive_count > 1

    @property
    def passed(self) -> bool:
        """Complete, in order, not in the DLQ, and its progress never counted towards the DLQ."""
        return (
            self.completed
            and self.in_order
            and not self.dead_lettered
            and not self.counted_towards_dlq
            and self.stopped_early is None
        )

    def row(self) -> dict[str, Any]:
        """The JSON form."""
        return {**asdict(self), "counted_towards_dlq": self.counted_towards_dlq, "passed": self.passed}


class QueueClock:
    """moto's SQS clock, shifted forward by the waits the run skipped (real time otherwise)."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def seconds(self) -> float:
        """The queue's ``time.time()``."""
        return time.time() + self.skipped

    @contextlib.contextmanager
    def installed(self) -> Iterator[QueueClock]:
        """moto's SQS backend reads this clock for the duration of the block."""
        import moto.sqs.models

        sqs_models: Any = moto.sqs.models  # the module's clock functions, imported from moto.core.utils
        saved = (sqs_models.unix_time, sqs_models.unix_time_millis)
        sqs_models.unix_time = lambda *_: self.seconds()
        sqs_models.unix_time_millis = lambda *_: self.seconds() * 1000
        try:
            yield self
        finally:
            sqs_models.unix_time, sqs_models.unix_time_millis = saved

    def skip_to_next_visible(self, queue_name: str) -> float:
        """Jump to just after the next message of ``queue_name`` becomes visible; return the seconds skipped."""
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[_MOTO_ACCOUNT][REGION].queues[queue_name]
        now_ms = self.seconds() * 1000
        due = [
            max(message.visible_at, message.delayed_until or 0.0)
            for message in queue._messages  # moto's own list: when each message comes back
        ]
        waits = [moment - now_ms for moment in due if moment > now_ms]
        if not waits:
            return 0.0
        skip = min(waits) / 1000 + 0.01
        self.skipped += skip
        return skip


def long_document(events: int, seed: int = 10_000) -> dict[str, Any]:
    """One valid submission of ``events`` process events from a realistic sensor (under 1 MiB encoded)."""
    rng = random.Random(seed)
    return fleet.submission(rng, fleet.device_ids(1, seed=seed)[0], processes=events, connections=0)


def run_long_submission(
    stack: Stack,
    *,
    events: int = EVENTS,
    put_records_ms: float = PUT_RECORDS_MS,
    function_timeout_s: int = DEPLOYED.function_timeout_seconds,
    max_deliveries: int = 50,
    max_real_seconds: float = 1_800.0,
) -> LongSubmissionResult:
    """Send the submission, drive the handler until the queue is empty or a bound is reached, check the stream."""
    sqs = boto3.client("sqs", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    stack.reset(1)
    visibility = max(DEPLOYED.visibility_timeout_seconds, 6 * function_timeout_s)
    resources = create_resources(
        sqs, stack.kinesis, s3, visibility_timeout=visibility, max_receive_count=DEPLOYED.max_receive_count
    )
    document = long_document(events)
    env = {  # the processor's environment as the stack sets it
        "QUEUE_URL": resources.queue_url,
        "DLQ_URL": resources.dlq_url,
        "QUARANTINE_BUCKET": resources.quarantine_bucket,
        "TIME_BUDGET_MARGIN_MS": str(DEPLOYED.time_budget_margin_ms),
        "LEDGER_STATEMENT_TIMEOUT_MS": str(DEPLOYED.ledger_statement_timeout_ms),
        "RETRY_BASE_DELAY_SECONDS": str(DEPLOYED.retry_base_delay_seconds),
        "RETRY_MAX_DELAY_SECONDS": str(DEPLOYED.retry_max_delay_seconds),
    }
    clock = QueueClock()
    bounds = _Bounds(function_timeout_s, visibility, max_deliveries, max_real_seconds)
    receives: list[int] = []
    started = time.monotonic()
    try:
        with patched_environ(env), kinesis_latency(put_records_ms), clock.installed(), handler_output_discarded():
            deliveries, stopped, dead = _drive(
                sqs, resources.queue_url, resources.dlq_url, document, clock, bounds, receives
            )
    finally:
        for url in (resources.queue_url, resources.dlq_url):
            sqs.delete_queue(QueueUrl=url)
        stack.kinesis.delete_stream(StreamName=resources.stream_name)  # local_stack's own, unused here
        s3.delete_bucket(Bucket=resources.quarantine_bucket)  # empty: every body here is valid
    real = time.monotonic() - started
    sequences = [
        record["sequence"]
        for record in read_stream(stack.kinesis, STREAM)
        if record["submission_id"] == document["submission_id"]
    ]
    first_copies = list(dict.fromkeys(sequences))
    return LongSubmissionResult(
        events=events,
        put_records_ms=put_records_ms,
        function_timeout_s=function_timeout_s,
        max_receive_count=DEPLOYED.max_receive_count,
        deliveries=deliveries,
        highest_receive_count=max(receives, default=0),
        seconds=round(real + clock.skipped, 1),
        real_seconds=round(real, 1),
        skipped_seconds=round(clock.skipped, 1),
        events_on_stream=len(sequences),
        distinct_events=len(first_copies),
        in_order=first_copies == list(range(len(first_copies))),
        dead_lettered=dead,
        completed=len(first_copies) == events,
        stopped_early=stopped,
    )


@dataclass(frozen=True)
class _Bounds:
    function_timeout_s: int
    visibility_timeout_s: int
    max_deliveries: int
    max_real_seconds: float


def _drive(
    sqs: Any,
    queue_url: str,
    dlq_url: str,
    document: dict[str, Any],
    clock: QueueClock,
    bounds: _Bounds,
    receives: list[int],
) -> tuple[int, str | None, bool]:
    """Send the submission and poll until the queue is empty or a bound is reached: (deliveries, why it
    stopped early, whether the DLQ holds a message). Each delivery's receive count goes to ``receives``."""
    from processor.handler import lambda_handler
    from telemetry_adapter.runtime import default_pipeline

    default_pipeline.cache_clear()  # rebuilt here: its Kinesis client pays the modelled delay
    started = time.monotonic()
    deliveries = 0
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody=fleet.encode(document))

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            receives.extend(int(record["attributes"]["ApproximateReceiveCount"]) for record in event["Records"])
            response: dict[str, Any] = lambda_handler(event, context)
            return response

        poller = Poller(
            sqs,
            queue_url,
            handler,
            Tally(),
            batch_size=DEPLOYED.batch_size,
            batching_window=DEPLOYED.max_batching_window_seconds,
            visibility_timeout=bounds.visibility_timeout_s,
            function_timeout=bounds.function_timeout_s,
            region=REGION,
        )
        while True:
            if deliveries >= bounds.max_deliveries:
                return deliveries, f"{bounds.max_deliveries} deliveries", queue_depth(sqs, dlq_url).total > 0
            if time.monotonic() - started > bounds.max_real_seconds:
                return deliveries, f"{bounds.max_real_seconds:g} s of real time", queue_depth(sqs, dlq_url).total > 0
            if poller.poll_once():
                deliveries += 1
            elif queue_depth(sqs, queue_url).total == 0:
                return deliveries, None, queue_depth(sqs, dlq_url).total > 0
            else:
                clock.skip_to_next_visible(queue_url.rsplit("/", 1)[-1])
    finally:
        with contextlib.suppress(Exception):
            default_pipeline().publisher.close()
        default_pipeline.cache_clear()
