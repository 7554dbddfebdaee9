"""The time budget around the ledger (guarantee 6): every wait for the database is bounded by what the
invocation has left, a reconnect the budget cannot hold is not attempted, and running out of time is a
deadline stop. Real PostgreSQL, behind a loopback proxy that can stall it; nothing here measures time."""

from __future__ import annotations

import math
import random
import threading
import time
import types
import uuid
from typing import Any

import pg8000.native
import pytest

from devkit import fleet
from devkit.lambda_shapes import LambdaContext, VirtualClock, sqs_event
from devkit.pgproxy import LatencyProxy
from processor.handler import handle_batch
from telemetry_adapter.config import PublishSettings, Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger import repository as repository_module
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings, StatementTimedOut
from telemetry_adapter.ledger.repository import Budget, BudgetExhausted, ClaimRequest, ClaimStatus, Ledger
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import OrderedPublisher
from telemetry_adapter.time_budget import response_slack_seconds
from tests.conftest import FAST_RETRIES, STREAM, make_pipeline
from tests.integration.test_guarantees import documents, failures


class ObservedLedger(Ledger):
    """The real ledger, noting for every statement it tries the allowance it took and what its budget
    said just before (infinite without a budget)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowances: list[tuple[float, float]] = []

    def statement_allowance(self, budget: Budget | None, *, connecting: bool) -> float:
        available = math.inf if budget is None else budget()
        allowance = super().statement_allowance(budget, connecting=connecting)
        self.allowances.append((allowance, available))
        return allowance


class StallTheDatabaseOnFirstCall:
    """Kinesis that, as its first call is answered, makes the database proxy hold every answer (a
    database that hangs or fails over between the claim and the outcome)."""

    def __init__(self, client: Any, proxy: LatencyProxy, ledger: ObservedLedger) -> None:
        self.client = client
        self.proxy = proxy
        self.ledger = ledger
        self.stalled_after: int | None = None
        """How many statements the ledger had tried when the stall began."""

    def put_records(self, **kwargs: Any) -> Any:
        if self.stalled_after is None:
            self.stalled_after = len(self.ledger.allowances)
            self.proxy.rtt_seconds = 30.0  # longer than the invocation: a stall, as far as it can tell
        return self.client.put_records(**kwargs)


def test_a_stalled_database_gets_no_more_time_than_the_invocation_has_left(clean_database: str, kinesis: Any) -> None:
    publish = PublishSettings(safety_margin_ms=2_500, backoff_base_ms=1, backoff_cap_ms=5)
    settings = Settings(stream_name=STREAM, publish=publish, statement_timeout_ms=1_000)
    proxy = LatencyProxy(clean_database, 0.0)
    proxy.start()
    try:
        ledger = ObservedLedger(
            ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect), statement_timeout_seconds=1.0
        )
        stalling = StallTheDatabaseOnFirstCall(kinesis, proxy, ledger)
        pipeline = BatchPipeline(settings, ledger, OrderedPublisher(stalling, STREAM, publish))
        event = sqs_event(fleet.encode(d) for d in documents(4))
        response = handle_batch(event, LambdaContext(timeout_ms=5_000), pipeline)
        pipeline.publisher.close()
    finally:
        # stop() closes every socket at once, then joins threads that still hold stalled answers: no
        # need to wait for those.
        threading.Thread(target=proxy.stop, daemon=True).start()
    # The outcome could not be recorded: every message comes back, nothing is acknowledged half-recorded.
    assert failures(response) == {record["messageId"] for record in event["Records"]}
    assert stalling.stalled_after is not None
    tried_after_stall = ledger.allowances[stalling.stalled_after :]
    assert len(tried_after_stall) >= 2  # the outcome, then a reconnect for it
    # Each wait (a statement, or a reconnect and its statement) was capped by the time the invocation had
    # left less the response slack, so the last one ended before the invocation did.
    assert all(allowance <= available for allowance, available in ledger.allowances)
    assert response_slack_seconds(publish.safety_margin_ms) == 1.0


def test_a_reconnect_the_budget_cannot_hold_is_not_attempted(clean_database: str) -> None:
    provider = ConnectionProvider(DatabaseSettings.from_url(clean_database).connect)
    ledger = Ledger(provider)
    ledger.ping()
    admin = DatabaseSettings.from_url(clean_database).connect()
    admin.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    admin.close()
    sent, connects = ledger.statements, provider.connects
    request = ClaimRequest("2f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", "154ef306-c788-4934-9489-118173e4ea1a", b"d", 1)
    with pytest.raises((pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError)) as caught:
        ledger.claim([request], owner="w", lease_seconds=60, budget=lambda: 0.3)
    # The statement went out once on the dead connection; with 0.3 s left, no new connection was opened,
    # and the connection failure (a ledger failure, not a deadline stop) is what the caller sees.
    assert (ledger.statements - sent, provider.connects - connects) == (1, 0)
    assert isinstance(caught.value.__cause__, BudgetExhausted)


def test_no_time_to_claim_is_a_deadline_stop_not_a_ledger_failure(clean_database: str, kinesis: Any) -> None:
    pipeline = make_pipeline(clean_database, kinesis)
    event = sqs_event(fleet.encode(d) for d in documents(3))
    sent = pipeline.ledger.statements
    report = pipeline.process(event["Records"], Deadline(500, FAST_RETRIES.safety_margin_ms))
    assert report.failed_message_ids == [record["messageId"] for record in event["Records"]]
    assert (report.ledger_failed, report.stopped_by_deadline) == (False, True)
    assert pipeline.ledger.statements == sent  # nothing was sent


class TakesTheRestOfTheBudget:
    """Kinesis whose one call (a batch of one-event submissions) leaves the invocation 0.55 s: under the
    margin, so nothing more starts, and with the 0.5 s response slack too little to send the outcome."""

    def __init__(self, client: Any, clock: VirtualClock) -> None:
        self.client = client
        self.clock = clock

    def put_records(self, **kwargs: Any) -> Any:
        self.clock.advance(4.45)
        return self.client.put_records(**kwargs)


def test_no_time_to_record_the_outcome_is_a_deadline_stop_not_a_ledger_failure(
    clean_database: str, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    pipeline = make_pipeline(clean_database, TakesTheRestOfTheBudget(kinesis, clock))
    rng = random.Random(11)
    documents_of_one_event = [
        fleet.submission(rng, device, processes=1, connections=0) for device in fleet.device_ids(3)
    ]
    event = sqs_event(fleet.encode(d) for d in documents_of_one_event)
    sent = pipeline.ledger.statements
    report = pipeline.process(event["Records"], Deadline(5_000, FAST_RETRIES.safety_margin_ms, clock=clock.now))
    assert pipeline.ledger.statements - sent == 1  # the claim; the outcome was not sent
    assert (report.publish.calls, report.publish.stopped_by_deadline) == (1, False)
    assert report.failed_message_ids == [record["messageId"] for record in event["Records"]]
    # DeadlineStops, not LedgerFailures (whose alarm says the database is down)
    assert (report.ledger_failed, report.stopped_by_deadline) == (False, True)
    logged = [r for r in caplog.records if getattr(r, "failure", None)]
    assert [r.failure for r in logged] == ["deadline"] * 3  # type: ignore[attr-defined]


def test_each_statement_waits_no_longer_than_its_budget_on_the_socket(clean_database: str) -> None:
    """The per-statement timeout reaches the socket pg8000 reads from (a driver upgrade that moved it
    would fail here)."""
    provider = ConnectionProvider(DatabaseSettings.from_url(clean_database).connect)
    ledger = Ledger(provider, statement_timeout_seconds=5.0)
    request = ClaimRequest("3a1b2c3d-4e5f-4a60-8b7c-9d0e1f2a3b4c", "154ef306-c788-4934-9489-118173e4ea1a", b"d", 1)
    ledger.claim([request], owner="w", lease_seconds=60, budget=lambda: 1.5)
    timeout = provider.get()._usock.gettimeout()
    assert timeout is not None
    assert 0 < timeout <= 1.5
    assert provider.connects == 1  # the same connection opened with 5 s: the budget set a shorter one


def test_an_answer_that_trickles_in_costs_a_statement_no_more_than_its_budget(clean_database: str) -> None:
    """Each read ends quickly (a slice of the answer arrives every 0.1 s, inside any socket timeout) but
    the whole answer would take seconds: the statement is cut on the wall clock when its allowance runs
    out, fails as a connection failure, and its connection is not used again."""
    proxy = LatencyProxy(clean_database, 0.0)
    proxy.start()
    try:
        provider = ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect)
        ledger = Ledger(provider, statement_timeout_seconds=5.0)
        ledger.ping()
        requests = [
            ClaimRequest(str(uuid.uuid4()), "154ef306-c788-4934-9489-118173e4ea1a", bytes([i]), 1) for i in range(200)
        ]
        proxy.trickle = (512, 0.1)  # the claim's answer, some 20 KB, would take about 4 s
        with pytest.raises(StatementTimedOut):
            ledger.claim(requests, owner="w", lease_seconds=60, budget=lambda: 0.4)  # too little to reconnect
        assert (ledger.statements, provider.connects, provider.ready) == (2, 1, False)  # the ping, the claim
    finally:
        proxy.trickle = None
        proxy.stop()


def _ledger_rows(database_url: str) -> int:
    direct = DatabaseSettings.from_url(database_url).connect()
    try:
        return int(direct.run("SELECT count(*) FROM submission_ledger")[0][0])
    finally:
        direct.close()


def test_a_connect_whose_answers_trickle_in_is_cut_on_the_wall_clock(clean_database: str) -> None:
    """The start-up exchange (authentication, parameter status: a few hundred bytes) arrives 4 bytes at a
    time, each read inside the socket timeout: the connect is cut when its allowance runs out, as a
    statement is, instead of lasting as long as the path cares to (some 20 s here)."""
    proxy = LatencyProxy(clean_database, 0.0)
    proxy.start()
    try:
        proxy.trickle = (4, 0.2)
        with pytest.raises(StatementTimedOut):
            DatabaseSettings.from_url(proxy.url).connect(timeout_seconds=0.5)
        provider = ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect)
        ledger = Ledger(provider, statement_timeout_seconds=1.0)
        request = ClaimRequest("4b1c2d3e-5f60-4a71-8c8d-9e0f1a2b3c4d", "154ef306-c788-4934-9489-118173e4ea1a", b"d", 1)
        with pytest.raises(StatementTimedOut):
            ledger.claim([request], owner="w", lease_seconds=60)
        # Both connects (the first and the reconnect) were cut: no claim was ever sent.
        assert (ledger.statements, provider.ready) == (0, False)
    finally:
        proxy.trickle = None
        proxy.stop()
    assert _ledger_rows(clean_database) == 0


def test_a_statement_the_connect_left_too_little_time_for_is_not_sent(clean_database: str) -> None:
    """A connect that takes all but 50 ms of the allowance (on a virtual clock): the claim is not sent with
    a limit too short to be answered (cut, it may still commit and hold its rows under a lease nobody
    acts on); the caller sees a deadline stop, and the new connection is kept for the next statement."""
    clock = VirtualClock()
    settings = DatabaseSettings.from_url(clean_database)

    def slow_connect(timeout_seconds: float | None = None) -> pg8000.native.Connection:
        connection = settings.connect(timeout_seconds)
        clock.advance((timeout_seconds or settings.timeout_seconds) - 0.05)
        return connection

    provider = ConnectionProvider(slow_connect)
    ledger = Ledger(provider, statement_timeout_seconds=5.0)
    started = clock.now()
    request = ClaimRequest("5c1d2e3f-6a70-4b81-8d9e-0f1a2b3c4d5e", "154ef306-c788-4934-9489-118173e4ea1a", b"d", 1)
    with pytest.raises(BudgetExhausted):
        ledger.claim([request], owner="w", lease_seconds=90, budget=lambda: 2.0 - (clock.now() - started))
    assert (ledger.statements, provider.connects, provider.ready) == (0, 1, True)
    assert _ledger_rows(clean_database) == 0


def test_a_slow_reconnect_with_time_left_in_the_invocation_still_sends_its_statement(
    clean_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconnect that takes all but 50 ms of the statement timeout, with a minute left in the
    invocation: the statement gets an allowance of its own and is sent. Charged to the statement, the
    connect's time turned this into a deadline stop: the batch's published progress went unrecorded
    and its events were re-sent on redelivery."""
    offset = [0.0]
    shifted = types.SimpleNamespace(monotonic=lambda: time.monotonic() + offset[0], perf_counter=time.perf_counter)
    monkeypatch.setattr(repository_module, "time", shifted)
    settings = DatabaseSettings.from_url(clean_database)

    def slow_connect(timeout_seconds: float | None = None) -> pg8000.native.Connection:
        connection = settings.connect(timeout_seconds)
        offset[0] += (timeout_seconds or settings.timeout_seconds) - 0.05  # the start-up exchange was slow
        return connection

    provider = ConnectionProvider(slow_connect)
    ledger = Ledger(provider, statement_timeout_seconds=5.0)
    request = ClaimRequest("6d2e3f40-7b81-4c92-9e0f-1a2b3c4d5e6f", "154ef306-c788-4934-9489-118173e4ea1a", b"d", 1)
    claims = ledger.claim([request], owner="w", lease_seconds=90, budget=lambda: 60.0)
    assert [claim.status for claim in claims.values()] == [ClaimStatus.CLAIMED]
    assert (ledger.statements, provider.connects) == (1, 1)
    assert _ledger_rows(clean_database) == 1
