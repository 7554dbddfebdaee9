"""Failed messages get a growing visibility, and a failing ledger or stream opens the circuit breaker.

SQS is moto, the ledger a real PostgreSQL reached through a loopback proxy that can refuse connections
(an outage at the network boundary), Kinesis moto or a fault-injecting wrapper around it. The queue's
own visibility timeout is 0, so a failed message without a backoff is receivable again at once: the
tests count messages received, they do not time them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devkit import fleet
from devkit.kinesis import FlakyKinesis, RecordingKinesis
from devkit.lambda_shapes import QUEUE_ARN, LambdaContext, VirtualClock, sqs_record
from devkit.pgproxy import LatencyProxy, latency_proxy
from processor.handler import handle_batch
from telemetry_adapter.backoff import NO_TIME, VisibilityBackoff
from telemetry_adapter.circuit_breaker import Admission, BreakerState, CircuitBreaker, Outcome
from telemetry_adapter.config import BreakerSettings, PublishSettings, RetrySettings, Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import KinesisClient, OrderedPublisher
from telemetry_adapter.retry_schedule import retry_delay_seconds
from tests.conftest import REGION, STREAM

LONG = RetrySettings(base_delay_seconds=600, max_delay_seconds=600)
"""Every backoff at least 300 s: a message backed off is not receivable for the rest of the test."""
PUBLISH = PublishSettings(safety_margin_ms=1_000, backoff_base_ms=1, backoff_cap_ms=2, max_attempts=2)
BREAKER = BreakerSettings(failures_to_open=2, cooldown_seconds=60)


@pytest.fixture
def queue(aws: None) -> tuple[Any, str]:
    """The submissions queue, visibility timeout 0: what is not backed off comes back at once."""
    sqs = boto3.client("sqs", region_name=REGION)
    return sqs, sqs.create_queue(QueueName="submissions", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]


@pytest.fixture
def proxy(clean_database: str) -> Iterator[LatencyProxy]:
    """The ledger behind a loopback proxy that an outage makes refuse every connection."""
    with latency_proxy(clean_database, 0.0) as started:
        yield started


def receive(sqs: Any, queue_url: str, visibility: int = 0) -> list[dict[str, Any]]:
    """One receive, shaped as the records of a Lambda event (as the event source mapping does it)."""
    answer = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=visibility
    )
    return [
        {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message["Attributes"],
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": QUEUE_ARN,
            "awsRegion": REGION,
        }
        for message in answer.get("Messages", [])
    ]


def send(sqs: Any, queue_url: str, count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    documents = [fleet.submission(rng, device) for device in fleet.device_ids(count)]
    for document in documents:
        sqs.send_message(QueueUrl=queue_url, MessageBody=fleet.encode(document))
    return documents


def delete_acknowledged(sqs: Any, queue_url: str, records: list[dict[str, Any]], response: dict[str, Any]) -> None:
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for record in records:
        if record["messageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])


class RecordingVisibility:
    """The real SQS client, keeping every ChangeMessageVisibilityBatch request (or failing them all)."""

    def __init__(self, client: Any, *, fail: bool = False) -> None:
        self.client = client
        self.fail = fail
        self.requests: list[list[dict[str, Any]]] = []

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.requests.append(Entries)
        if self.fail:
            raise ConnectionError("SQS unreachable")
        return self.client.change_message_visibility_batch(QueueUrl=QueueUrl, Entries=Entries)


def pipeline_for(
    database_url: str,
    kinesis: KinesisClient,
    backoff: VisibilityBackoff | None,
    *,
    clock: VirtualClock | None = None,
) -> BatchPipeline:
    settings = Settings(stream_name=STREAM, publish=PUBLISH, breaker=BREAKER)
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(database_url).connect))
    breaker = CircuitBreaker(BREAKER, clock=clock.now) if clock else None
    publisher = OrderedPublisher(kinesis, STREAM, PUBLISH)
    return BatchPipeline(settings, ledger, publisher, backoff=backoff, breaker=breaker)


def breaker_state(pipeline: BatchPipeline) -> BreakerState:
    """The breaker's state, read through a call (each read asks the clock again)."""
    return pipeline.breaker.state


def handle(pipeline: BatchPipeline, records: list[dict[str, Any]]) -> dict[str, Any]:
    return handle_batch({"Records": records}, LambdaContext(timeout_ms=60_000), pipeline)


def test_failed_messages_stay_invisible_for_their_backoff_and_come_back_without_one(
    queue: tuple[Any, str], proxy: LatencyProxy, kinesis: Any
) -> None:
    sqs, queue_url = queue
    send(sqs, queue_url, 3)
    proxy.refuse_connections()  # the ledger is down: every valid message fails
    without = pipeline_for(proxy.url, kinesis, None)
    records = receive(sqs, queue_url)
    assert len(handle(without, records)["batchItemFailures"]) == 3
    records = receive(sqs, queue_url)
    assert len(records) == 3  # no backoff: visible again at once (the queue's visibility timeout, 0 here)

    recording = RecordingVisibility(sqs)
    backed = pipeline_for(proxy.url, kinesis, VisibilityBackoff(recording, queue_url, LONG))
    response = handle(backed, records)
    assert len(response["batchItemFailures"]) == 3
    assert receive(sqs, queue_url) == []  # backed off: none of them is receivable
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "3"
    ((entries),) = recording.requests  # one call for the batch, by receipt handle
    assert sorted(entry["ReceiptHandle"] for entry in entries) == sorted(r["receiptHandle"] for r in records)
    assert all(300 <= entry["VisibilityTimeout"] <= 600 for entry in entries)


def test_a_short_backoff_ends_and_the_message_is_received_again(queue: tuple[Any, str]) -> None:
    sqs, queue_url = queue
    send(sqs, queue_url, 1)
    records = receive(sqs, queue_url)
    short = VisibilityBackoff(sqs, queue_url, RetrySettings(base_delay_seconds=1, max_delay_seconds=1))
    result = short.apply(records, [records[0]["messageId"]], Deadline(60_000, 1_000), 1_000)
    assert (result.backed_off, result.failed) == (1, 0)
    again: list[dict[str, Any]] = []
    for _ in range(40):  # bounded: at most 40 receives, 0.1 s apart
        again = receive(sqs, queue_url)
        if again:
            break
        time.sleep(0.1)
    assert [record["messageId"] for record in again] == [records[0]["messageId"]]
    assert again[0]["attributes"]["ApproximateReceiveCount"] == "2"


def test_the_delay_grows_with_the_receive_count_and_calls_hold_ten_messages(queue: tuple[Any, str]) -> None:
    sqs, queue_url = queue
    send(sqs, queue_url, 12)
    records = receive(sqs, queue_url, 60) + receive(sqs, queue_url, 60)
    assert len(records) == 12
    for index, record in enumerate(records):  # as if each had been received index + 1 times
        record["attributes"]["ApproximateReceiveCount"] = str(index + 1)
    recording = RecordingVisibility(sqs)
    retry = RetrySettings(base_delay_seconds=30, max_delay_seconds=900)
    backoff = VisibilityBackoff(recording, queue_url, retry, rng=random.Random(7))
    result = backoff.apply(records, [r["messageId"] for r in records], Deadline(60_000, 1_000), 1_000)
    assert (result.backed_off, result.failed) == (12, 0)
    assert sorted(len(entries) for entries in recording.requests) == [2, 10]  # the two calls went out together
    delays = {entry["ReceiptHandle"]: entry["VisibilityTimeout"] for entries in recording.requests for entry in entries}
    expected_rng = random.Random(7)
    expected = [retry_delay_seconds(n, 30, 900, expected_rng) for n in range(1, 13)]
    assert [delays[record["receiptHandle"]] for record in records] == expected  # drawn in the records' order
    assert expected[0] <= 30  # 15 to 30 s after the first receive
    assert expected[-1] >= 450  # at least half the 900 s cap by the 12th


def test_a_failed_backoff_call_changes_no_acknowledgement_and_is_logged_once(
    queue: tuple[Any, str], clean_database: str, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sqs, queue_url = queue
    documents = send(sqs, queue_url, 2)
    broken = fleet.with_defect(documents[0], "bad_ip")  # rejected: acknowledged whatever the backoff does
    sqs.send_message(QueueUrl=queue_url, MessageBody=fleet.encode(broken))
    failing = RecordingVisibility(sqs, fail=True)
    flaky = FlakyKinesis(kinesis, record_failure_rate=1.0)  # every record refused: the valid ones fail
    pipeline = pipeline_for(clean_database, flaky, VisibilityBackoff(failing, queue_url, LONG))
    records = receive(sqs, queue_url)
    caplog.set_level(logging.WARNING)
    response = handle(pipeline, records)
    assert len(response["batchItemFailures"]) == 2
    assert len(failing.requests) == 1
    delete_acknowledged(sqs, queue_url, records, response)  # the rejected one, as the event source does
    warnings = [r for r in caplog.records if r.getMessage().startswith("visibility backoff not set")]
    assert len(warnings) == 1
    assert warnings[0].__dict__["errors"] == {"ConnectionError": 2}
    assert len(receive(sqs, queue_url)) == 2  # not backed off: back at once, as without a backoff


def test_no_call_without_the_time_to_make_it(queue: tuple[Any, str]) -> None:
    sqs, queue_url = queue
    send(sqs, queue_url, 1)
    records = receive(sqs, queue_url)
    recording = RecordingVisibility(sqs)
    backoff = VisibilityBackoff(recording, queue_url, LONG)
    clock = VirtualClock()
    short = Deadline(3_999, 13_000, clock=clock.now)  # 1 s of response slack + 3 s for the call: 1 ms short
    result = backoff.apply(records, [records[0]["messageId"]], short, 13_000)
    assert (result.backed_off, result.errors, recording.requests) == (0, {NO_TIME: 1}, [])
    enough = Deadline(4_000, 13_000, clock=clock.now)
    assert backoff.apply(records, [records[0]["messageId"]], enough, 13_000).backed_off == 1


class LedgerDownAfterFirstCall:
    """Kinesis that, as its first call is answered, takes the ledger down: the proxy refuses new
    connections and the ledger's open one is ended (an outage between the claim and the outcome)."""

    def __init__(self, client: Any, proxy: LatencyProxy, database_url: str) -> None:
        self.client = client
        self.proxy = proxy
        self.database_url = database_url

    def put_records(self, **request: Any) -> Any:
        response = self.client.put_records(**request)
        if not self.proxy.refusing:
            self.proxy.refuse_connections()
            admin = DatabaseSettings.from_url(self.database_url).connect()
            try:
                admin.run(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            finally:
                admin.close()
        return response


def test_the_outcome_retries_leave_the_failed_messages_time_for_their_backoff(
    queue: tuple[Any, str], proxy: LatencyProxy, clean_database: str, kinesis: Any
) -> None:
    # The stack's margin (15 s): one backoff call needs 3 s beyond the 1 s response slack, more than
    # the outcome's last retry pause and reconnect (1.5 s). Retried to the slack, the outcome would
    # leave no time for it, and every message of the batch would come back after the visibility timeout.
    sqs, queue_url = queue
    send(sqs, queue_url, 2)
    records = receive(sqs, queue_url)
    clock = VirtualClock()
    publish = PublishSettings(safety_margin_ms=15_000, backoff_base_ms=1, backoff_cap_ms=2, max_attempts=2)
    settings = Settings(stream_name=STREAM, publish=publish, breaker=BREAKER)
    recording = RecordingVisibility(sqs)
    pipeline = BatchPipeline(
        settings,
        Ledger(ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect)),
        OrderedPublisher(LedgerDownAfterFirstCall(kinesis, proxy, clean_database), STREAM, publish),
        backoff=VisibilityBackoff(recording, queue_url, LONG),
        sleep=clock.sleep,
    )
    response = handle_batch({"Records": records}, LambdaContext(timeout_ms=60_000, clock=clock.now), pipeline)
    assert len(response["batchItemFailures"]) == 2  # the outcome never landed: both redelivered
    assert proxy.refused > 5  # the outcome was retried through the outage, for most of the invocation
    assert [len(entries) for entries in recording.requests] == [2]  # and both got their backoff
    assert receive(sqs, queue_url) == []


class SlowVisibility(RecordingVisibility):
    """The real SQS client, each call taking half a second on the virtual clock."""

    def __init__(self, client: Any, clock: VirtualClock) -> None:
        super().__init__(client)
        self.clock = clock

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.clock.advance(0.5)
        return super().change_message_visibility_batch(QueueUrl=QueueUrl, Entries=Entries)


def test_one_call_s_time_backs_off_a_whole_batch_of_failures(queue: tuple[Any, str]) -> None:
    # 25 failed messages, three calls, and time left for one: the calls go out together, so all three
    # are made (one after another, each would have found the time of the one before it spent).
    sqs, queue_url = queue
    send(sqs, queue_url, 25)
    records = [record for _ in range(3) for record in receive(sqs, queue_url, 60)]
    assert len(records) == 25
    clock = VirtualClock()
    slow = SlowVisibility(sqs, clock)
    backoff = VisibilityBackoff(slow, queue_url, LONG)
    just_enough = Deadline(4_000, 13_000, clock=clock.now)  # 1 s of response slack + 3 s for one call
    result = backoff.apply(records, [record["messageId"] for record in records], just_enough, 13_000)
    assert (result.backed_off, result.errors) == (25, {})
    assert sorted(len(entries) for entries in slow.requests) == [5, 10, 10]
    sent = sorted(entry["ReceiptHandle"] for entries in slow.requests for entry in entries)
    assert sent == sorted(record["receiptHandle"] for record in records)


class AcceptingVisibility:
    """An SQS endpoint that accepts every entry, each call taking half a second on the virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.requests: list[list[dict[str, Any]]] = []

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.requests.append(Entries)
        self.clock.advance(0.5)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def test_calls_beyond_the_first_round_check_the_time_again() -> None:
    # A batch of 120 failures: ten calls in the first round, on one check; the last two check again,
    # and find the time the first round took spent.
    records = [sqs_record(fleet.encode({"n": index})) for index in range(120)]
    clock = VirtualClock()
    endpoint = AcceptingVisibility(clock)
    backoff = VisibilityBackoff(endpoint, "https://sqs.example/queue", LONG)
    result = backoff.apply(records, [r["messageId"] for r in records], Deadline(4_000, 13_000, clock=clock.now), 13_000)
    assert (result.backed_off, result.errors) == (100, {NO_TIME: 20})
    assert len(endpoint.requests) == 10


def test_no_thread_for_the_calls_fails_them_without_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    # The processor's answer must go out whatever happens here: a process out of threads counts the
    # messages as not backed off (they come back after the visibility timeout) instead of raising.
    class NoThreads:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr("telemetry_adapter.backoff.ThreadPoolExecutor", NoThreads)
    records = [sqs_record(fleet.encode({"n": index})) for index in range(20)]
    endpoint = AcceptingVisibility(VirtualClock())
    backoff = VisibilityBackoff(endpoint, "https://sqs.example/queue", LONG)
    result = backoff.apply(records, [r["messageId"] for r in records], Deadline(60_000, 13_000), 13_000)
    assert (result.backed_off, result.errors, endpoint.requests) == (0, {"RuntimeError": 20}, [])


def test_a_ledger_outage_opens_the_breaker_and_a_probe_after_the_cooldown_closes_it(
    queue: tuple[Any, str], proxy: LatencyProxy, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sqs, queue_url = queue
    clock = VirtualClock()
    recorder = RecordingKinesis(kinesis)
    pipeline = pipeline_for(proxy.url, recorder, VisibilityBackoff(sqs, queue_url, RetrySettings(1, 1)), clock=clock)
    documents = send(sqs, queue_url, 2)
    records = receive(sqs, queue_url)
    proxy.refuse_connections()
    caplog.set_level(logging.WARNING)
    for _ in range(BREAKER.failures_to_open):  # the ledger fails: the breaker counts
        assert len(handle(pipeline, records)["batchItemFailures"]) == 2
    assert pipeline.breaker.state is BreakerState.OPEN
    statements, refused = pipeline.ledger.statements, proxy.refused
    response = handle(pipeline, records)  # open: fails fast, no claim, no PutRecords
    assert len(response["batchItemFailures"]) == 2
    assert (pipeline.ledger.statements, proxy.refused, recorder.calls) == (statements, refused, [])
    failures = [r.__dict__.get("failure") for r in caplog.records if r.getMessage() == "message not acknowledged"]
    assert failures[-2:] == ["breaker_open", "breaker_open"]

    proxy.accept_connections()
    clock.advance(BREAKER.cooldown_seconds)  # half-open: the next batch probes, and finds the ledger back
    assert handle(pipeline, records) == {"batchItemFailures": []}
    assert pipeline.breaker.record(Admission.NOT_ASKED, Outcome.SILENT) is BreakerState.CLOSED
    published = {submission for call in recorder.calls for submission, _ in call.records}
    assert published == {document["submission_id"] for document in documents}
    assert recorder.order_violations() == []


class Crash(BaseException):
    """Something no handler catches (as a MemoryError in the wrong place, or a bug, would escape)."""


class CrashingKinesis:
    """The real Kinesis client, whose next PutRecords raises :class:`Crash` once ``armed``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.armed = False

    def put_records(self, **request: Any) -> Any:
        if self.armed:
            self.armed = False
            raise Crash("the probe batch crashed")
        return self.client.put_records(**request)


def test_a_probe_batch_that_crashes_is_a_failed_probe_and_never_wedges_the_breaker(
    queue: tuple[Any, str], proxy: LatencyProxy, kinesis: Any
) -> None:
    sqs, queue_url = queue
    clock = VirtualClock()
    crashing = CrashingKinesis(kinesis)
    pipeline = pipeline_for(proxy.url, crashing, None, clock=clock)
    send(sqs, queue_url, 2)
    records = receive(sqs, queue_url)
    proxy.refuse_connections()
    for _ in range(BREAKER.failures_to_open):
        handle(pipeline, records)
    assert breaker_state(pipeline) is BreakerState.OPEN
    proxy.accept_connections()
    clock.advance(BREAKER.cooldown_seconds)
    crashing.armed = True
    with pytest.raises(Crash):  # the probe's invocation dies: conclude is never called
        handle(pipeline, records)
    assert breaker_state(pipeline) is BreakerState.OPEN  # a failed probe: open for another cooldown
    assert pipeline.breaker.times_opened == 2
    clock.advance(BREAKER.cooldown_seconds)  # the next batch probes, finds everything back, and closes it
    # (new submissions: the crashed probe's claim still holds its own for the rest of their lease)
    rng = random.Random(99)
    fresh = [sqs_record(fleet.encode(fleet.submission(rng, device))) for device in fleet.device_ids(2, seed=99)]
    assert handle(pipeline, fresh) == {"batchItemFailures": []}
    assert breaker_state(pipeline) is BreakerState.CLOSED


def test_a_kinesis_outage_opens_the_breaker_and_the_heartbeat_says_so(
    queue: tuple[Any, str], clean_database: str, kinesis: Any
) -> None:
    sqs, queue_url = queue
    pipeline = pipeline_for(clean_database, FlakyKinesis(kinesis, record_failure_rate=1.0), None)
    send(sqs, queue_url, 1)
    records = receive(sqs, queue_url)
    for _ in range(BREAKER.failures_to_open):
        handle(pipeline, records)
    assert (pipeline.breaker.state, pipeline.breaker.cause) == (BreakerState.OPEN, "kinesis_failed")
    assert pipeline.ledger.circuit_breaker_states(60) == {"open": 1}
    handle(pipeline, records)  # refused, and the heartbeat written again while open
    assert pipeline.ledger.circuit_breaker_states(60) == {"open": 1}


def test_a_probe_that_never_calls_kinesis_leaves_a_breaker_kinesis_opened_half_open(
    queue: tuple[Any, str], clean_database: str, kinesis: Any
) -> None:
    sqs, queue_url = queue
    clock = VirtualClock()
    flaky = FlakyKinesis(kinesis)
    pipeline = pipeline_for(clean_database, flaky, None, clock=clock)
    send(sqs, queue_url, 1)
    published = receive(sqs, queue_url)
    assert handle(pipeline, published) == {"batchItemFailures": []}  # completed in the ledger
    flaky.record_failure_rate = 1.0  # Kinesis goes down
    rng = random.Random(5)
    fresh = [sqs_record(fleet.encode(fleet.submission(rng, device))) for device in fleet.device_ids(1, seed=5)]
    for _ in range(BREAKER.failures_to_open):
        handle(pipeline, fresh)
    assert (breaker_state(pipeline), pipeline.breaker.cause) == (BreakerState.OPEN, Outcome.KINESIS_FAILED)
    clock.advance(BREAKER.cooldown_seconds)
    calls = flaky.faults.records_failed
    assert handle(pipeline, published) == {"batchItemFailures": []}  # the probe: a duplicate, no PutRecords
    assert flaky.faults.records_failed == calls
    assert breaker_state(pipeline) is BreakerState.HALF_OPEN  # Kinesis was not asked: still unknown
    assert len(handle(pipeline, fresh)["batchItemFailures"]) == 1  # the next batch probes Kinesis
    assert breaker_state(pipeline) is BreakerState.OPEN
