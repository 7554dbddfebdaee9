"""The ordered publisher on moto: request limits, retries, attempts and the time budget."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from devkit import fleet
from devkit.kinesis import FlakyKinesis, RecordingKinesis, read_stream
from devkit.lambda_shapes import sqs_event
from telemetry_adapter.circuit_breaker import BreakerState
from telemetry_adapter.config import BreakerSettings, PublishSettings, Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import MAX_BYTES_PER_CALL, OrderedPublisher, PublishJob
from telemetry_adapter.records import EventRecord
from tests.conftest import STREAM
from tests.integration.test_guarantees import documents


def job(submission: int, events: int, size: int = 100) -> PublishJob:
    key = f"00000000-0000-4000-8000-{submission:012d}"
    records = [
        EventRecord(
            (f'{{"submission_id":"{key}","sequence":{sequence},"pad":"' + "x" * size + '"}').encode(),
            f"device-{submission % 5}",
        )
        for sequence in range(events)
    ]
    return PublishJob(key, records)


def test_calls_respect_the_5_mib_limit(kinesis: Any) -> None:
    recorder = RecordingKinesis(kinesis)
    jobs = [job(i, 1, size=40_000) for i in range(300)]  # 12 MB in one wave
    OrderedPublisher(recorder, STREAM, PublishSettings(max_concurrency=1)).publish(jobs, Deadline(60_000, 0))
    assert all(j.done for j in jobs)
    assert len(recorder.calls) == 3
    assert all(len(call.records) * 40_000 < MAX_BYTES_PER_CALL for call in recorder.calls)


def test_calls_respect_the_500_record_limit(kinesis: Any) -> None:
    recorder = RecordingKinesis(kinesis)
    jobs = [job(i, 2) for i in range(1_100)]
    stats = OrderedPublisher(recorder, STREAM, PublishSettings(max_concurrency=3)).publish(jobs, Deadline(60_000, 0))
    assert stats.records_sent == 2_200
    assert max(len(call.records) for call in recorder.calls) == 500
    assert len(recorder.calls) == 6  # 2 waves of ceil(1100 / 500)
    assert recorder.order_violations() == []


def test_attempts_are_bounded(kinesis: Any) -> None:
    broken = FlakyKinesis(kinesis, record_failure_rate=1.0)
    jobs = [job(i, 3) for i in range(4)]
    settings = PublishSettings(max_attempts=4, backoff_base_ms=1, backoff_cap_ms=2)
    stats = OrderedPublisher(broken, STREAM, settings).publish(jobs, Deadline(60_000, 0))
    assert stats.gave_up == 4
    assert stats.records_failed == 16
    assert not any(j.done for j in jobs)
    assert read_stream(kinesis, STREAM) == []


def test_no_call_starts_inside_the_safety_margin(kinesis: Any) -> None:
    recorder = RecordingKinesis(kinesis)
    stats = OrderedPublisher(recorder, STREAM, PublishSettings()).publish([job(1, 3)], Deadline(1_000, 2_000))
    assert stats.stopped_by_deadline
    assert recorder.calls == []


def test_backoff_is_full_jitter_capped(kinesis: Any) -> None:
    settings = PublishSettings(backoff_base_ms=100, backoff_cap_ms=1_000)
    publisher = OrderedPublisher(kinesis, STREAM, settings, rng=random.Random(1))
    waits = [publisher._backoff(attempt) for attempt in range(1, 12) for _ in range(50)]
    assert max(waits) <= 1.0
    assert min(waits) >= 0.0
    assert max(publisher._backoff(1) for _ in range(50)) <= 0.1
    assert len({round(w, 6) for w in waits}) > 100  # jittered, not fixed


class MalformedAnswers:
    """Kinesis whose first answers are malformed (no Records, too few, not objects, neither an error
    nor a sequence number): the call's records may or may not be in the stream."""

    ANSWERS: tuple[Any, ...] = (
        None,
        {"FailedRecordCount": 0},
        {"Records": []},
        {"Records": ["ok", "ok", "ok"]},
        {"Records": [{}, {}, {}]},
    )

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def put_records(self, **kwargs: Any) -> Any:
        response = self.client.put_records(**kwargs)
        self.calls += 1
        return self.ANSWERS[self.calls - 1] if self.calls <= len(self.ANSWERS) else response


def test_a_malformed_answer_is_a_failed_call_not_a_crash(kinesis: Any) -> None:
    malformed = MalformedAnswers(kinesis)
    jobs = [job(i, 2) for i in range(3)]
    settings = PublishSettings(max_concurrency=1, backoff_base_ms=0, backoff_cap_ms=0)
    stats = OrderedPublisher(malformed, STREAM, settings).publish(jobs, Deadline(60_000, 0))
    assert all(j.done for j in jobs)
    assert stats.calls_failed == len(MalformedAnswers.ANSWERS)
    assert {j.last_error for j in jobs} == {"MalformedResponse"}  # kept for the log of a message that fails


class StallsItsFirstCall:
    """Kinesis whose first call hangs, as one whose answer trickles in a byte at a time does (each read
    inside the client's read timeout, the call without end), until the test releases it; released, it
    answers that every record failed, so nothing depends on when. Later calls answer at once."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.release = threading.Event()
        self.calls = 0
        self.stalled_calls_ended = threading.Event()
        self.threads: set[int] = set()

    def put_records(self, **kwargs: Any) -> Any:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.calls == 1:
            self.release.wait(30)  # bounded, should the publisher never stop waiting
            self.stalled_calls_ended.set()
            return {"Records": [{"ErrorCode": "InternalFailure"} for _ in kwargs["Records"]]}
        return self.client.put_records(**kwargs)


def test_a_call_that_outlives_its_time_is_a_failed_call_and_holds_no_more_than_its_thread(kinesis: Any) -> None:
    """The publisher stops waiting for a call at its wall-clock limit and retries its records like those
    of a failed call (the abandoned call may still land them: same ids, a duplicate guarantee 3 allows).
    The call keeps its thread until it ends, so the threads stay within the concurrency setting."""
    stalling = StallsItsFirstCall(kinesis)
    jobs = [job(i, 2) for i in range(3)]
    settings = PublishSettings(max_concurrency=2, backoff_base_ms=0, backoff_cap_ms=0)
    publisher = OrderedPublisher(stalling, STREAM, settings, call_timeout_seconds=0.2)
    try:
        stats = publisher.publish(jobs, Deadline(60_000, 0))
        assert all(j.done for j in jobs)
        assert stats.calls_failed == 1
        assert {j.last_error for j in jobs} == {"CallTimedOut"}
        assert len(stalling.threads) <= settings.max_concurrency
        assert not stalling.stalled_calls_ended.is_set()  # it was not waited for
    finally:
        stalling.release.set()
        publisher.close()
    assert [r["sequence"] for r in read_stream(kinesis, STREAM) if r["submission_id"] == jobs[0].key] == [0, 1]


def test_no_call_starts_while_every_thread_holds_an_abandoned_call(kinesis: Any) -> None:
    """One thread, stuck in a call the publisher gave up on: the publisher waits one call's time for it,
    then stops (the messages are redelivered) rather than start a thread more."""
    stalling = StallsItsFirstCall(kinesis)
    jobs = [job(0, 2)]
    settings = PublishSettings(max_concurrency=1, backoff_base_ms=0, backoff_cap_ms=0)
    publisher = OrderedPublisher(stalling, STREAM, settings, call_timeout_seconds=0.2)
    try:
        stats = publisher.publish(jobs, Deadline(60_000, 0))
        # Not a deadline stop: Kinesis is not answering (a blocked call, which the breaker counts).
        assert (stalling.calls, stats.calls_failed, stats.calls_blocked, stats.stopped_by_deadline) == (1, 1, 1, False)
        assert jobs[0].sent == 0
    finally:
        stalling.release.set()
        publisher.close()


class HangsEveryCall:
    """Kinesis that answers no call until the test releases them (then every record failed)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def put_records(self, **kwargs: Any) -> Any:
        self.calls += 1
        self.release.wait(30)  # bounded, should the publisher never stop waiting
        return {"Records": [{"ErrorCode": "InternalFailure"} for _ in kwargs["Records"]]}


def test_a_batch_blocked_by_abandoned_calls_is_a_kinesis_failure(
    clean_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The first batch's call is abandoned and keeps the one thread; the second batch can make no call
    at all. That is Kinesis not answering, not a deadline stop: its messages log ``kinesis_blocked``,
    the metric counts a blocked call, and the breaker counts the batch as a Kinesis failure (two in a
    row open it here), where a batch with no call used to count as a success."""
    hanging = HangsEveryCall()
    publish = PublishSettings(max_concurrency=1, backoff_base_ms=0, backoff_cap_ms=0, safety_margin_ms=1_000)
    settings = Settings(stream_name=STREAM, publish=publish, breaker=BreakerSettings(failures_to_open=2))
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(clean_database).connect))
    pipeline = BatchPipeline(settings, ledger, OrderedPublisher(hanging, STREAM, publish, call_timeout_seconds=0.2))
    try:
        reports = []
        for batch in range(2):
            records = sqs_event(fleet.encode(d) for d in documents(2, seed=batch))["Records"]
            deadline = Deadline(60_000, publish.safety_margin_ms)
            caplog.clear()
            report = pipeline.process(records, deadline)
            pipeline.conclude(records, report, deadline)
            reports.append(report)
        second = reports[1]
        assert (hanging.calls, second.publish.calls, second.publish.calls_blocked) == (1, 0, 1)
        assert second.stopped_by_deadline is False
        assert len(second.failed_message_ids) == 2
        logged = [r.failure for r in caplog.records if getattr(r, "failure", None)]  # type: ignore[attr-defined]
        assert logged == ["kinesis_blocked"] * 2
        assert (reports[0].breaker_state, second.breaker_state) == (BreakerState.CLOSED, BreakerState.OPEN)
    finally:
        hanging.release.set()
        pipeline.publisher.close()
