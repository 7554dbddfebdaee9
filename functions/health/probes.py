"""The probes behind each health check: one dependency each, answering a :class:`Verdict`.

Probes raise on any failure to reach their dependency; the runner turns that into ``failing`` with
the error's code. Details are numbers, states and names only: never a URL, a host or a credential.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from telemetry_adapter.health_checks import Status, Verdict
from telemetry_adapter.ledger.repository import Ledger

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sqs import SQSClient

# Writes still succeed while a stream is resharding (UPDATING); CREATING and DELETING mean no stream.
_WRITABLE_STREAM_STATES = ("ACTIVE", "UPDATING")
# SQS publishes its CloudWatch metrics once a minute, a few minutes late: look back far enough.
_AGE_LOOKBACK = timedelta(minutes=10)


class SharedLedger:
    """The health function's one ledger connection, used by one check at a time.

    A pg8000 connection is not thread-safe, and two checks read the ledger concurrently. A probe
    that cannot get the connection within the check timeout (because an earlier probe is stuck on
    it) gives up with TimeoutError instead of queueing behind it.
    """

    def __init__(self, ledger: Ledger, timeout_seconds: float) -> None:
        self._ledger = ledger
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[Ledger]:
        """The ledger, exclusively, for the duration of the block."""
        if not self._lock.acquire(timeout=self._timeout_seconds):
            raise TimeoutError("the ledger connection is busy with an earlier check")
        try:
            yield self._ledger
        finally:
            self._lock.release()


def not_configured(variable: str) -> Verdict:
    """The verdict of a check whose resource the environment does not name."""
    return Verdict(Status.FAILING, {"reason": "not_configured", "variable": variable})


def ledger_reachable(ledger: SharedLedger) -> Verdict:
    """The ledger answers through the connection the function keeps (RDS Proxy in AWS), and holds the
    processor's tables: a server that answers without them (migrations not run, or the wrong
    database named) fails every batch just the same."""
    with ledger.use() as connection:
        missing = connection.missing_tables()
    if missing:
        return Verdict(Status.FAILING, {"reason": "schema_missing", "missing": missing})
    return Verdict(Status.OK)


def processor_heartbeat(ledger: SharedLedger, max_age_seconds: int) -> Verdict:
    """Time since any processor recorded a batch: degraded if never, or longer ago than allowed.

    A quiet fleet also stops the heartbeat, so this degrades rather than fails: it asks an operator
    to look, it does not say the pipeline is broken.
    """
    with ledger.use() as connection:
        age = connection.last_heartbeat_age_seconds()
    details: dict[str, object] = {"max_age_seconds": max_age_seconds}
    if age is None:
        return Verdict(Status.DEGRADED, {"reason": "never", "age_seconds": None, **details})
    details["age_seconds"] = round(age, 1)
    if age > max_age_seconds:
        return Verdict(Status.DEGRADED, {"reason": "stale", **details})
    return Verdict(Status.OK, details)


def circuit_breaker(ledger: SharedLedger, max_age_seconds: int) -> Verdict:
    """The circuit breakers of the processors that recorded a batch recently: degraded while any is
    open or half-open (it fails batches fast, and their messages wait in the queue with a backoff).

    Each processor writes its breaker's state with its heartbeat. A breaker opened because the ledger
    failed cannot be written there, but then the ``ledger`` check fails; one opened because Kinesis
    failed is written by every batch it refuses.
    """
    with ledger.use() as connection:
        states = connection.circuit_breaker_states(max_age_seconds)
    open_count = states.get("open", 0) + states.get("half_open", 0)
    details = {
        "open": states.get("open", 0),
        "half_open": states.get("half_open", 0),
        "processors": sum(states.values()),
        "max_age_seconds": max_age_seconds,
    }
    if open_count:
        return Verdict(Status.DEGRADED, {"reason": "open", **details})
    return Verdict(Status.OK, details)


def stream_active(kinesis: KinesisClient, stream_name: str) -> Verdict:
    """The stream exists and accepts writes (DescribeStreamSummary)."""
    try:
        summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    except kinesis.exceptions.ResourceNotFoundException:
        return Verdict(Status.FAILING, {"reason": "not_found", "stream": stream_name})
    state = summary["StreamStatus"]
    details = {"stream": stream_name, "stream_status": state, "open_shards": summary.get("OpenShardCount")}
    if state not in _WRITABLE_STREAM_STATES:
        return Verdict(Status.FAILING, {"reason": "not_active", **details})
    return Verdict(Status.OK, details)


def queue_depth(sqs: SQSClient, queue_url: str) -> Verdict:
    """Messages waiting and in flight on the submissions queue (GetQueueAttributes)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return Verdict(
        Status.OK,
        {
            "queue": queue_name(queue_url),
            "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        },
    )


def dead_letter_depth(sqs: SQSClient, dlq_url: str) -> Verdict:
    """Messages on the dead-letter queue: any at all is degraded (data waiting for an operator)."""
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    depth = int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
    details = {"queue": queue_name(dlq_url), "messages": depth}
    if depth > 0:
        return Verdict(Status.DEGRADED, {"reason": "messages_waiting", **details})
    return Verdict(Status.OK, details)


def oldest_message_age(cloudwatch: CloudWatchClient, queue_url: str, now: datetime | None = None) -> Verdict:
    """The latest ``ApproximateAgeOfOldestMessage`` datapoint; ``null`` (unknown) when there is none.

    SQS has no API for this figure, only the CloudWatch metric, which may have no recent datapoint
    (an idle queue, a new stack): that is unknown, not unhealthy.
    """
    end = now or datetime.now(UTC)
    name = queue_name(queue_url)
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "age",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": name}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            }
        ],
        StartTime=end - _AGE_LOOKBACK,
        EndTime=end,
        ScanBy="TimestampDescending",
    )
    values = [value for result in response["MetricDataResults"] for value in result.get("Values", [])[:1]]
    age = values[0] if values else None
    return Verdict(Status.OK, {"queue": name, "age_seconds": age, "lookback_seconds": _AGE_LOOKBACK.seconds})


def queue_name(queue_url: str) -> str:
    """The queue's name, the last segment of its URL (the account id and endpoint stay out)."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]
