"""The delivery guarantees (docs/contract.md), each by a test that would fail without it. Real PostgreSQL,
boto3 to moto, faults injected at the Kinesis client boundary."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devkit import fleet
from devkit.kinesis import FlakyKinesis, RecordingKinesis, read_stream
from devkit.lambda_shapes import LambdaContext, VirtualClock, sqs_event, sqs_record
from devkit.pgproxy import LatencyProxy, latency_proxy
from processor.handler import handle_batch
from telemetry_adapter.config import PublishSettings, Settings
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import OrderedPublisher
from telemetry_adapter.submission import parse_submission
from tests.conftest import FAST_RETRIES, STREAM, make_pipeline


def documents(count: int, seed: int = 5, devices: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    ids = fleet.device_ids(devices, seed=seed)
    return [fleet.submission(rng, ids[i % devices]) for i in range(count)]


def failures(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def events_by_submission(kinesis: Any) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_stream(kinesis, STREAM):
        grouped[record["submission_id"]].append(record)
    for records in grouped.values():
        records.sort(key=lambda r: int(r["_sequence_number"]))  # one device, one shard: stream order
    return grouped


def assert_exactly_once_in_order(kinesis: Any, docs: list[dict[str, Any]]) -> None:
    grouped = events_by_submission(kinesis)
    assert set(grouped) == {d["submission_id"] for d in docs}
    for document in docs:
        sequences = [r["sequence"] for r in grouped[document["submission_id"]]]
        assert sequences == list(range(fleet.expected_event_count(document))), document["submission_id"]


def run_until_acknowledged(pipeline: BatchPipeline, event: dict[str, Any], rounds: int = 10) -> int:
    """Redeliver the failed records, as SQS would, until none is left; return the rounds used."""
    for round_number in range(1, rounds + 1):
        failed = failures(handle_batch(event, LambdaContext(), pipeline))
        if not failed:
            return round_number
        event = {"Records": [r for r in event["Records"] if r["messageId"] in failed]}
    raise AssertionError(f"messages still failing after {rounds} rounds")


class FailSomeCalls:
    """Kinesis whose calls number ``failing`` (1-based) fail as a whole: before reaching the stream, or,
    with ``applied``, after Kinesis wrote them (the answer was lost)."""

    def __init__(self, client: Any, failing: set[int], *, applied: bool = False) -> None:
        self.client = client
        self.failing = failing
        self.applied = applied
        self.calls = 0

    def put_records(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls not in self.failing:
            return self.client.put_records(**kwargs)
        if self.applied:
            self.client.put_records(**kwargs)
            raise TimeoutError("injected: PutRecords applied but its answer was lost")
        raise ConnectionError("injected: PutRecords call failed before reaching Kinesis")


# 1. No loss of valid data -------------------------------------------------------------------------


def test_record_failures_are_retried_alone_until_every_event_is_in_order(clean_database: str, kinesis: Any) -> None:
    flaky = FlakyKinesis(FailSomeCalls(kinesis, failing={2, 5, 9}), record_failure_rate=0.3, seed=3)
    recorder = RecordingKinesis(flaky)
    # One call at a time, so the seeded faults fall the same way on every run.
    sequential = PublishSettings(max_concurrency=1, backoff_base_ms=1, backoff_cap_ms=5, max_attempts=50)
    pipeline = make_pipeline(clean_database, recorder, publish=sequential)
    docs = documents(60)
    response = handle_batch(sqs_event(fleet.encode(d) for d in docs), LambdaContext(), pipeline)
    assert response == {"batchItemFailures": []}
    assert flaky.faults.records_failed > 20
    assert sum(call.raised for call in recorder.calls) == 3
    assert_exactly_once_in_order(kinesis, docs)
    assert recorder.order_violations() == []
    # Retries carry only records that failed: every record was sent once more per failure, no more.
    sent = sum(len(call.records) for call in recorder.calls)
    total_events = sum(fleet.expected_event_count(d) for d in docs)
    failed = sum(sum(call.failed) for call in recorder.calls)
    assert sent == total_events + failed


def test_lost_answers_only_duplicate_with_the_same_id_and_first_copies_in_order(
    clean_database: str, kinesis: Any
) -> None:
    losing = FailSomeCalls(kinesis, failing={1, 4, 7}, applied=True)
    pipeline = make_pipeline(clean_database, losing)
    docs = documents(30)
    assert handle_batch(sqs_event(fleet.encode(d) for d in docs), LambdaContext(), pipeline) == {
        "batchItemFailures": []
    }
    assert losing.calls > 7
    duplicates = 0
    for document in docs:
        records = events_by_submission(kinesis)[document["submission_id"]]
        first_copies: dict[int, str] = {}
        for record in records:
            if record["sequence"] in first_copies:
                assert first_copies[record["sequence"]] == record["id"]
                duplicates += 1
            else:
                first_copies[record["sequence"]] = record["id"]
        assert list(first_copies) == list(range(fleet.expected_event_count(document)))
    assert duplicates >= 1


def test_a_message_is_not_acknowledged_while_events_are_missing(clean_database: str, kinesis: Any) -> None:
    always_failing = FlakyKinesis(kinesis, record_failure_rate=1.0)
    pipeline = make_pipeline(clean_database, always_failing, publish=PublishSettings(max_attempts=3, backoff_base_ms=1))
    docs = documents(4)
    event = sqs_event(fleet.encode(d) for d in docs)
    response = handle_batch(event, LambdaContext(), pipeline)
    assert failures(response) == {r["messageId"] for r in event["Records"]}
    assert read_stream(kinesis, STREAM) == []


# 2. Order within a submission, calls packed --------------------------------------------------------


def test_each_call_carries_one_event_per_submission_and_batches_cost_the_bound(
    clean_database: str, kinesis: Any
) -> None:
    recorder = RecordingKinesis(kinesis)
    pipeline = make_pipeline(clean_database, recorder, publish=PublishSettings(max_concurrency=1))
    docs = documents(1_200, seed=8, devices=40)
    event = sqs_event(fleet.encode(d) for d in docs)
    assert handle_batch(event, LambdaContext(), pipeline) == {"batchItemFailures": []}
    assert recorder.order_violations() == []
    counts = [fleet.expected_event_count(d) for d in docs]
    bound = max(*counts, -(-sum(counts) // 500))
    assert bound <= len(recorder.calls) <= bound + 2
    assert max(len(call.records) for call in recorder.calls) == 500


def test_long_submission_costs_one_call_per_event(clean_database: str, kinesis: Any) -> None:
    recorder = RecordingKinesis(kinesis)
    pipeline = make_pipeline(clean_database, recorder)
    device = fleet.device_ids(1)[0]
    long_one = fleet.submission(random.Random(1), device, processes=20, connections=5)
    assert handle_batch(sqs_event([fleet.encode(long_one)]), LambdaContext(), pipeline) == {"batchItemFailures": []}
    assert len(recorder.calls) == 25
    assert_exactly_once_in_order(kinesis, [long_one])


# 3. Duplicates suppressed ---------------------------------------------------------------------------


def test_same_submission_twice_in_one_batch_is_published_once(pipeline: BatchPipeline, kinesis: Any) -> None:
    document = documents(1)[0]
    event = sqs_event([fleet.encode(document), fleet.encode(document)])
    report = pipeline.process(event["Records"], _deadline())
    assert report.failed_message_ids == []
    assert report.duplicates_suppressed == 1
    assert_exactly_once_in_order(kinesis, [document])


def test_same_submission_in_two_batches_is_published_once(pipeline: BatchPipeline, kinesis: Any) -> None:
    document = documents(1)[0]
    assert handle_batch(sqs_event([fleet.encode(document)]), LambdaContext(), pipeline) == {"batchItemFailures": []}
    report = pipeline.process(sqs_event([fleet.encode(document)])["Records"], _deadline())
    assert (report.failed_message_ids, report.duplicates_suppressed) == ([], 1)
    assert_exactly_once_in_order(kinesis, [document])


def test_two_invocations_at_the_same_moment_publish_once(clean_database: str, kinesis: Any) -> None:
    docs = documents(40)
    bodies = [fleet.encode(d) for d in docs]
    workers = [make_pipeline(clean_database, kinesis) for _ in range(2)]
    events = [sqs_event(bodies), sqs_event(bodies)]  # same submissions, different message ids
    barrier = threading.Barrier(2)
    responses: list[dict[str, Any]] = [{}, {}]

    def invoke(index: int) -> None:
        workers[index].ledger.ping()
        barrier.wait()
        responses[index] = handle_batch(events[index], LambdaContext(), workers[index])

    threads = [threading.Thread(target=invoke, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Whatever one worker had leased, the other reported busy; redelivery then finds them done.
    for index in range(2):
        retry = {"Records": [r for r in events[index]["Records"] if r["messageId"] in failures(responses[index])]}
        if retry["Records"]:
            report = workers[index].process(retry["Records"], _deadline())
            assert report.failed_message_ids == []
            assert report.duplicates_suppressed == len(retry["Records"])
    assert_exactly_once_in_order(kinesis, docs)


# 4. Resume after failure ----------------------------------------------------------------------------


class SlowKinesis:
    """Kinesis whose every call takes ``seconds`` of a virtual clock (a slow or throttled service)."""

    def __init__(self, client: Any, clock: VirtualClock, seconds: float) -> None:
        self.client = client
        self.clock = clock
        self.seconds = seconds

    def put_records(self, **kwargs: Any) -> Any:
        self.clock.advance(self.seconds)
        return self.client.put_records(**kwargs)


def test_cut_by_the_time_budget_then_resumed_from_the_first_unpublished_event(
    clean_database: str, kinesis: Any
) -> None:
    clock = VirtualClock()
    publish = PublishSettings(safety_margin_ms=13_000, max_concurrency=1)
    recorder = RecordingKinesis(kinesis)
    pipeline = make_pipeline(clean_database, SlowKinesis(recorder, clock, 5.0), publish=publish)
    docs = documents(5, seed=9)
    for document in docs:  # 12 events each: 12 calls of 5 s, more than a 60 s invocation holds
        document["events"]["new_process"] = document["events"]["new_process"][:3] * 2
        document["events"]["network_connection"] = document["events"]["network_connection"][:3] * 2
    event = sqs_event(fleet.encode(d) for d in docs)
    context = LambdaContext(timeout_ms=60_000, clock=clock.now)
    first = handle_batch(event, context, pipeline)
    # Calls start while more than the margin is left (at 0, 5, ..., 45 s): ten calls of one event each.
    assert len(recorder.calls) == 10
    assert context.get_remaining_time_in_millis() == 10_000  # 6. it returned inside its own invocation
    assert failures(first) == {r["messageId"] for r in event["Records"]}
    published_before = len(read_stream(kinesis, STREAM))
    assert published_before == 50
    # The progress was recorded and the lease released: a redelivery resumes at once, where it stopped.
    rows = _ledger_rows(clean_database)
    assert all(row[1] is None for row in rows)
    assert sum(row[0] for row in rows) == published_before
    pipeline_again = make_pipeline(clean_database, recorder)
    assert handle_batch(event, LambdaContext(), pipeline_again) == {"batchItemFailures": []}
    assert_exactly_once_in_order(kinesis, docs)  # no event sent twice: resumed, not restarted
    assert recorder.order_violations() == []


def test_expired_lease_of_a_dead_worker_is_taken_over(clean_database: str, kinesis: Any) -> None:
    document = documents(1)[0]
    submission = parse_submission(fleet.encode(document), Settings(stream_name=STREAM).limits)
    dead = Ledger(ConnectionProvider(DatabaseSettings.from_url(clean_database).connect))
    request = ClaimRequest(submission.submission_id, submission.device_id, submission.digest, len(submission.events))
    dead.claim([request], owner="dead-worker", lease_seconds=0.5)
    pipeline = make_pipeline(clean_database, kinesis)
    assert failures(handle_batch(sqs_event([fleet.encode(document)]), LambdaContext(), pipeline))  # still leased
    time.sleep(0.6)
    assert handle_batch(sqs_event([fleet.encode(document)]), LambdaContext(), pipeline) == {"batchItemFailures": []}
    assert_exactly_once_in_order(kinesis, [document])


# 5. Invalid data never published, never retried ---------------------------------------------------------


def test_invalid_submissions_are_acknowledged_and_never_published(pipeline: BatchPipeline, kinesis: Any) -> None:
    valid = documents(3)
    bodies = [fleet.encode(d) for d in valid]
    bodies += [fleet.encode(fleet.with_defect(valid[0], defect)) for defect in fleet.DEFECTS]
    bodies += [fleet.hostile_body(kind) for kind in fleet.HOSTILE]
    report = pipeline.process(sqs_event(bodies)["Records"], _deadline())
    assert report.failed_message_ids == []
    assert sum(report.rejected.values()) == len(fleet.DEFECTS) + len(fleet.HOSTILE)
    assert_exactly_once_in_order(kinesis, valid)


def test_conflicting_duplicate_is_dropped(pipeline: BatchPipeline, kinesis: Any) -> None:
    original = documents(1)[0]
    pipeline.process(sqs_event([fleet.encode(original)])["Records"], _deadline())
    tampered = {**original, "events": {"new_process": [{"cmdl": "evil.exe", "user": "mallory"}]}}
    report = pipeline.process(sqs_event([fleet.encode(tampered)])["Records"], _deadline())
    assert report.failed_message_ids == []
    assert report.rejected == {"conflicting_duplicate": 1}
    assert_exactly_once_in_order(kinesis, [original])


def test_a_copy_is_not_decided_against_another_copy_of_the_same_batch(pipeline: BatchPipeline, kinesis: Any) -> None:
    original = documents(1)[0]
    tampered = {**original, "device_id": fleet.device_ids(2)[1]}
    event = sqs_event([fleet.encode(original), fleet.encode(tampered)])
    report = pipeline.process(event["Records"], _deadline())
    # The ledger held neither content before this batch: the other copy waits for a redelivery...
    assert (report.failed_message_ids, dict(report.rejected)) == ([event["Records"][1]["messageId"]], {})
    # ... which finds the first content recorded, and only then drops it as a conflict.
    again = pipeline.process([event["Records"][1]], _deadline())
    assert (again.failed_message_ids, dict(again.rejected)) == ([], {"conflicting_duplicate": 1})
    assert_exactly_once_in_order(kinesis, [original])


def test_a_tampered_copy_ahead_of_the_redelivered_original_does_not_lose_it(clean_database: str, kinesis: Any) -> None:
    """The ledger holds the original, unfinished (its worker died); a batch brings a tampered copy
    first and the redelivered original second. The original is published, the tampered copy dropped."""
    original = documents(1)[0]
    submission = parse_submission(fleet.encode(original), Settings(stream_name=STREAM).limits)
    dead = Ledger(ConnectionProvider(DatabaseSettings.from_url(clean_database).connect))
    request = ClaimRequest(submission.submission_id, submission.device_id, submission.digest, len(submission.events))
    dead.claim([request], owner="dead-worker", lease_seconds=0)
    tampered = {**original, "events": {"new_process": [{"cmdl": "evil.exe", "user": "mallory"}]}}
    pipeline = make_pipeline(clean_database, kinesis)
    event = sqs_event([fleet.encode(tampered), fleet.encode(original)])
    report = pipeline.process(event["Records"], _deadline())
    assert (report.failed_message_ids, dict(report.rejected)) == ([], {"conflicting_duplicate": 1})
    assert report.submissions_completed == 1
    assert_exactly_once_in_order(kinesis, [original])


# Failures reach SQS as batch item failures, never as a crash ----------------------------------------------


def test_ledger_down_fails_valid_messages_and_acknowledges_invalid_ones(kinesis: Any) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:9/none"  # discard port: nothing listens
    pipeline = make_pipeline(unreachable, kinesis)
    valid = [fleet.encode(d) for d in documents(3)]
    event = sqs_event([*valid, fleet.hostile_body("not_json")])
    response = handle_batch(event, LambdaContext(), pipeline)
    assert failures(response) == {r["messageId"] for r in event["Records"][:3]}
    assert read_stream(kinesis, STREAM) == []


def test_a_batch_where_every_record_fails_still_returns_a_partial_response(kinesis: Any) -> None:
    pipeline = make_pipeline("postgresql://postgres@127.0.0.1:9/none", kinesis)
    event = {"Records": [sqs_record(fleet.encode(d)) for d in documents(2)]}
    response = handle_batch(event, LambdaContext(), pipeline)
    assert failures(response) == {r["messageId"] for r in event["Records"]}


def test_busy_submission_is_retried_not_dropped(clean_database: str, kinesis: Any) -> None:
    document = documents(1)[0]
    submission = parse_submission(fleet.encode(document), Settings(stream_name=STREAM).limits)
    other = Ledger(ConnectionProvider(DatabaseSettings.from_url(clean_database).connect))
    other.claim(
        [ClaimRequest(submission.submission_id, submission.device_id, submission.digest, len(submission.events))],
        owner="live-worker",
        lease_seconds=60,
    )
    pipeline = make_pipeline(clean_database, kinesis)
    event = sqs_event([fleet.encode(document)])
    assert failures(handle_batch(event, LambdaContext(), pipeline)) == {event["Records"][0]["messageId"]}


def test_redelivery_loop_converges_under_heavy_faults(clean_database: str, kinesis: Any) -> None:
    flaky = FlakyKinesis(kinesis, record_failure_rate=0.5, call_failure_rate=0.1, lost_answer_rate=0.05, seed=9)
    pipeline = make_pipeline(clean_database, flaky, publish=PublishSettings(max_attempts=2, backoff_base_ms=1))
    docs = documents(40, seed=10)
    rounds = run_until_acknowledged(pipeline, sqs_event(fleet.encode(d) for d in docs), rounds=30)
    assert rounds > 1  # the faults did force redeliveries
    grouped = events_by_submission(kinesis)
    for document in docs:
        seen: dict[int, str] = {}
        for record in grouped[document["submission_id"]]:
            seen.setdefault(record["sequence"], record["id"])
            assert seen[record["sequence"]] == record["id"]
        assert list(seen) == list(range(fleet.expected_event_count(document)))


def _deadline() -> Any:
    from telemetry_adapter.deadline import Deadline

    return Deadline(60_000, FAST_RETRIES.safety_margin_ms)


def _ledger_rows(url: str) -> list[list[Any]]:
    connection = DatabaseSettings.from_url(url).connect()
    try:
        rows: list[list[Any]] = connection.run("SELECT published_count, lease_owner FROM submission_ledger")
        return rows
    finally:
        connection.close()


class KillBackendsAfterFirstCall:
    """Kinesis that, after its first call, terminates the test database's other sessions (a restart)."""

    def __init__(self, client: Any, database_url: str) -> None:
        self.client = client
        self.database_url = database_url
        self.killed = False

    def put_records(self, **kwargs: Any) -> Any:
        response = self.client.put_records(**kwargs)
        if not self.killed:
            admin = DatabaseSettings.from_url(self.database_url).connect()
            admin.run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            admin.close()
            self.killed = True
        return response


def test_outcome_is_retried_through_a_short_database_outage(clean_database: str, kinesis: Any) -> None:
    """The database restarts mid-batch and refuses two connections: the outcome still lands."""
    refusals = iter([False, True, True])  # first connect works (the claim), then two are refused

    def connect(timeout_seconds: float | None = None) -> Any:
        if next(refusals, False):
            raise ConnectionRefusedError("injected: the database is restarting")
        return DatabaseSettings.from_url(clean_database).connect(timeout_seconds)

    settings = Settings(stream_name=STREAM, publish=FAST_RETRIES)
    ledger = Ledger(ConnectionProvider(connect))
    publisher = OrderedPublisher(KillBackendsAfterFirstCall(kinesis, clean_database), STREAM, FAST_RETRIES)
    pipeline = BatchPipeline(settings, ledger, publisher)
    docs = documents(5)
    report = pipeline.process(sqs_event(fleet.encode(d) for d in docs)["Records"], _deadline())
    assert (report.failed_message_ids, report.ledger_failed) == ([], False)
    assert next(refusals, "drained") == "drained"
    assert all(row[1] is None for row in _ledger_rows(clean_database))
    assert_exactly_once_in_order(kinesis, docs)


# 7. A poison value affects its own message only -------------------------------------------------------


def test_a_poison_ip_is_rejected_and_its_neighbours_are_published(pipeline: BatchPipeline, kinesis: Any) -> None:
    valid = documents(3)
    # A lone surrogate in an IPv6 scope id: raw JSON text, which json.dumps would not write.
    document = json.dumps({**valid[0], "submission_id": str(uuid.uuid4()), "events": {"network_connection": ["X"]}})
    poison = document.replace('"X"', '{"source_ip": "fe80::1%\\ud800", "destination_ip": "::1", "destination_port": 1}')
    event = sqs_event([fleet.encode(valid[0]), poison, fleet.encode(valid[1]), fleet.encode(valid[2])])
    report = pipeline.process(event["Records"], _deadline())
    assert (report.failed_message_ids, dict(report.rejected)) == ([], {"invalid_ip": 1})
    assert_exactly_once_in_order(kinesis, valid)


class UnreadableBody(dict[str, Any]):
    """An SQS record whose body cannot be read: stands in for any failure of decoding no test foresaw."""

    def get(self, key: str, default: Any = None) -> Any:
        if key == "body":
            raise RuntimeError("injected: the body cannot be read")
        return super().get(key, default)


def test_an_unexpected_decoder_error_fails_its_own_message_only(
    pipeline: BatchPipeline, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    valid = documents(2)
    event = sqs_event([fleet.encode(valid[0]), fleet.encode(valid[1])])
    broken = UnreadableBody(sqs_record(fleet.encode(documents(3)[2])))
    report = pipeline.process([event["Records"][0], broken, event["Records"][1]], _deadline())
    assert report.failed_message_ids == [broken["messageId"]]
    assert report.decoder_errors == 1
    assert_exactly_once_in_order(kinesis, valid)
    errors = [r for r in caplog.records if r.levelname == "ERROR" and getattr(r, "message_id", None)]
    assert [(r.message_id, r.failure, r.last_error) for r in errors] == [  # type: ignore[attr-defined]
        (broken["messageId"], "decoder_error", "RuntimeError")
    ]
    assert errors[0].exc_info is not None  # the traceback, for the fix


# Fencing: only the lease holder acknowledges ---------------------------------------------------------------


class LeaseTakenOverDuringFirstCall:
    """Kinesis during whose first call this worker's lease lapses (a paused process) and another
    worker takes the submission over."""

    def __init__(self, client: Any, database_url: str, request: ClaimRequest) -> None:
        self.client = client
        self.database_url = database_url
        self.request = request
        self.taken_over = False

    def put_records(self, **kwargs: Any) -> Any:
        if not self.taken_over:
            admin = DatabaseSettings.from_url(self.database_url).connect()
            admin.run("UPDATE submission_ledger SET lease_expires_at = now() - interval '1 second'")
            admin.close()
            thief = Ledger(ConnectionProvider(DatabaseSettings.from_url(self.database_url).connect))
            thief.claim([self.request], owner="the-other-worker", lease_seconds=60)
            self.taken_over = True
        return self.client.put_records(**kwargs)


def test_a_worker_whose_lease_was_taken_over_does_not_acknowledge(clean_database: str, kinesis: Any) -> None:
    document = documents(1)[0]
    submission = parse_submission(fleet.encode(document), Settings(stream_name=STREAM).limits)
    request = ClaimRequest(submission.submission_id, submission.device_id, submission.digest, len(submission.events))
    pipeline = make_pipeline(clean_database, LeaseTakenOverDuringFirstCall(kinesis, clean_database, request))
    event = sqs_event([fleet.encode(document)])
    report = pipeline.process(event["Records"], _deadline())
    # Every event reached Kinesis, but the outcome row is the other worker's now: its fate is theirs.
    assert report.events_published == len(submission.events)
    assert report.failed_message_ids == [event["Records"][0]["messageId"]]
    assert report.leases_lost == 1
    assert [row[1] for row in _ledger_rows(clean_database)] == ["the-other-worker"]


class LoseTheOutcomeAnswer:
    """Kinesis that, on its first call, makes the database proxy drop the answer to the next statement
    (the outcome) after the server committed it."""

    def __init__(self, client: Any, proxy: LatencyProxy) -> None:
        self.client = client
        self.proxy = proxy
        self.armed = False

    def put_records(self, **kwargs: Any) -> Any:
        if not self.armed:
            self.proxy.lose_next_answer()
            self.armed = True
        return self.client.put_records(**kwargs)


def test_an_outcome_whose_answer_was_lost_after_commit_still_acknowledges_the_batch(
    clean_database: str, kinesis: Any
) -> None:
    """The ledger re-sends the outcome on a new connection; the re-send finds the leases it released
    already, with the progress it asks to record, and reports them written (not lost to another worker)."""
    docs = documents(5)
    with latency_proxy(clean_database, 0.0) as proxy:
        pipeline = make_pipeline(proxy.url, LoseTheOutcomeAnswer(kinesis, proxy))
        report = pipeline.process(sqs_event([fleet.encode(d) for d in docs])["Records"], _deadline())
        assert proxy.answers_lost == 1
    assert (report.failed_message_ids, report.leases_lost, report.ledger_failed) == ([], 0, False)
    assert report.submissions_completed == 5
    assert pipeline.ledger.statements == 3  # the claim, the outcome and its re-send
    connection = DatabaseSettings.from_url(clean_database).connect()
    completed = connection.run("SELECT count(*) FROM submission_ledger WHERE completed_at IS NOT NULL")
    connection.close()
    assert completed == [[5]]
    assert_exactly_once_in_order(kinesis, docs)


def test_a_claim_whose_answer_was_lost_after_commit_does_not_decide_a_copy_against_its_batch(
    clean_database: str, kinesis: Any
) -> None:
    """The re-sent claim finds the row its first attempt inserted for the batch's first content: that
    content stays claimed, and the second content waits for a redelivery (guarantee 5), not rejected."""
    original = documents(1)[0]
    tampered = {**original, "device_id": fleet.device_ids(2)[1]}
    event = sqs_event([fleet.encode(original), fleet.encode(tampered)])
    with latency_proxy(clean_database, 0.0) as proxy:
        pipeline = make_pipeline(proxy.url, kinesis)
        pipeline.ledger.ping()  # connected: the next request is the claim
        proxy.lose_next_answer()
        report = pipeline.process(event["Records"], _deadline())
        assert proxy.answers_lost == 1
    assert (report.failed_message_ids, dict(report.rejected)) == ([event["Records"][1]["messageId"]], {})
    assert pipeline.ledger.statements == 4  # a ping, the claim, its re-send and the outcome
    assert_exactly_once_in_order(kinesis, [original])


def test_a_batch_of_only_invalid_messages_still_writes_the_heartbeat(pipeline: BatchPipeline) -> None:
    """The health check reads the heartbeat: a fleet sending only broken submissions is not a dead processor."""
    event = sqs_event([fleet.hostile_body("not_json"), fleet.hostile_body("deep")])
    report = pipeline.process(event["Records"], _deadline())
    assert (report.failed_message_ids, sum(report.rejected.values())) == ([], 2)
    assert pipeline.ledger.last_heartbeat_age_seconds() is not None


class RefusesOversizedRecords:
    """Kinesis refusing a whole PutRecords request that holds a record over ``limit`` bytes, as the
    real service refuses one over 1 MiB (a ValidationException for the request, not for the record)."""

    def __init__(self, client: Any, limit: int) -> None:
        self.client = client
        self.limit = limit
        self.refused = 0

    def put_records(self, **kwargs: Any) -> Any:
        if any(len(r["Data"]) + len(r["PartitionKey"].encode()) > self.limit for r in kwargs["Records"]):
            self.refused += 1
            error = {"Error": {"Code": "ValidationException", "Message": "injected: a record is too large"}}
            raise ClientError(error, "PutRecords")  # type: ignore[arg-type]
        return self.client.put_records(**kwargs)


def test_a_record_kinesis_refuses_does_not_cost_its_neighbours_their_attempts(
    clean_database: str, kinesis: Any
) -> None:
    neighbours = documents(6)
    poison = {**documents(7)[6], "events": {"new_process": [{"cmdl": "x" * 20_000, "user": "u"}]}}
    refusing = RefusesOversizedRecords(kinesis, limit=10_000)
    publish = PublishSettings(max_attempts=3, backoff_base_ms=0, backoff_cap_ms=0, max_concurrency=1)
    pipeline = make_pipeline(clean_database, refusing, publish=publish)
    event = sqs_event([fleet.encode(poison), *(fleet.encode(d) for d in neighbours)])
    report = pipeline.process(event["Records"], _deadline())
    assert refusing.refused >= 2  # the packed call, then the record alone
    assert report.failed_message_ids == [event["Records"][0]["messageId"]]
    assert report.publish.gave_up == 1
    assert_exactly_once_in_order(kinesis, neighbours)
