"""A model checker for the processing core: hypothesis drives the real pipeline through arbitrary
interleavings and checks the delivery guarantees against a model after every step.

The system under test is the processor as Lambda runs it (``processor.handler.handle_batch`` with a
:class:`~telemetry_adapter.pipeline.BatchPipeline`) on a real PostgreSQL ledger and a Kinesis stream
(moto, in process). Faults enter only at the boundaries:

* Kinesis (:class:`ScriptedKinesis`): per call, records refused, the whole call failing before it
  reaches the stream, a call applied whose answer is lost, a malformed answer; while a call is in
  flight, the database connections killed (and, optionally, new ones refused for a while), or a
  second worker handling copies of the same submissions at that very moment, possibly after the first
  worker's leases expired (a paused worker whose submissions are taken over), or a worker taking them
  over and holding them without finishing (itself paused);
* the database (:class:`FaultyConnector`): connections refused, backends terminated between steps,
  leases expired as if time had passed;
* the queue (:class:`ModelQueue`): messages delivered in any subset and order, exact and conflicting
  copies in one batch, redeliveries, hand-backs that SQS refuses;
* the quarantine (:class:`ModelQuarantine`): writes that S3 refuses, and replays of everything it
  holds back onto the queue;
* time: each invocation's budget is a virtual clock that every PutRecords call advances, so a budget
  runs out at a chosen call, whatever the machine's load.

The model knows the pool of submissions (some ids with two different contents, one invalid body that
reuses a valid id, one that is not JSON) and every message's fate. After every step it checks:

1. nothing is acknowledged unless it was rejected (invalid, or another content is the one the ledger
   holds) and its body is in the quarantine, or its content is the ledger's and fully published, or a
   copy was handed back to the queue; a rejected message is left on the queue only when its batch's
   quarantine write failed;
2. every record in the stream is, byte for byte bar the processing time, an event of the content the
   ledger holds for its id: nothing invalid or conflicting is ever published, and copies carry the
   same event id;
3. the first copies of a submission's events are in order, with no gap;
4. the ledger's published prefix never shrinks, never runs ahead of the stream, and a completed row
   has every event in the stream.

When the steps are done, faults stop, leases expire and the queue is drained: every message must be
settled and every submission sent must be complete (eventual completion); with no ambiguous fault in
the run (a lost answer, a malformed answer, a failed ledger update, a stolen lease), no record may
appear twice, however often the quarantine was replayed.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import random
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import hypothesis
import pg8000.native
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from moto import mock_aws

from chaos.scenario import ObservedPipeline
from devkit import fleet
from devkit.kinesis import read_stream
from devkit.lambda_shapes import LambdaContext, VirtualClock, sqs_record
from devkit.moto_fixes import serialised_moto_shards
from processor.handler import handle_batch
from telemetry_adapter.config import PublishSettings, Settings
from telemetry_adapter.handback import HANDED_BACK_FROM, QueueHandBack
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from telemetry_adapter.publisher import OrderedPublisher
from telemetry_adapter.quarantine import QuarantineStore
from telemetry_adapter.quarantine_format import QuarantinedMessage, decode
from telemetry_adapter.records import build_records
from telemetry_adapter.submission import parse_submission

REGION = "us-east-1"
MARGIN_MS = 10_000
CALL_SECONDS = 1.0
"""Virtual seconds each PutRecords call takes: a budget of ``MARGIN_MS`` + k seconds starts k calls."""
AMPLE_BUDGET_MS = 120_000
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/model-submissions"
_TIMESTAMP = "processing_timestamp"
_KILL_BACKENDS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)

KINESIS_ACTIONS = (
    "ok",
    "ok",
    "ok",
    "fail_first",
    "fail_all",
    "call_fails",
    "lost_answer",
    "malformed",
    "kill_db",
    "kill_db_and_refuse",
    "second_worker",
    "steal",
    "steal_and_hold",
)
"""What a PutRecords call may meet (``ok`` weighted up). See :class:`ScriptedKinesis`."""
AMBIGUOUS = frozenset({"lost_answer", "malformed", "kill_db_and_refuse", "steal", "steal_and_hold"})
"""Faults after which a record may legitimately be written twice (same id)."""
_HOOKS = frozenset({"kill_db", "kill_db_and_refuse", "second_worker", "steal", "steal_and_hold"})


class Violation(AssertionError):
    """An invariant of the delivery guarantees does not hold."""


@dataclass(frozen=True)
class Content:
    """One content of a submission id, or an invalid body (``submission_id`` None): its body and
    digest, and its events as the stream must carry them (minus the processing time)."""

    name: str
    body: str
    submission_id: str | None = None
    digest: bytes = b""
    records: tuple[dict[str, Any], ...] = ()


def build_pool() -> list[Content]:
    """Four submission ids (two with a second, conflicting content; one with no events), an invalid
    body that reuses a valid id, and a body that is not JSON. Fixed: the checker varies interleavings,
    not documents."""
    rng = random.Random(20_261_128)  # noqa: S311 - test data
    devices = fleet.device_ids(3, seed=3)
    sizes = ((3, 2), (1, 2), (0, 0), (2, 1))
    documents = [fleet.submission(rng, devices[n % 3], processes=p, connections=c) for n, (p, c) in enumerate(sizes)]
    tampered_0 = copy.deepcopy(documents[0])
    tampered_0["events"] = {"new_process": [{"cmdl": "evil.exe", "user": "mallory"}]}
    tampered_1 = {**copy.deepcopy(documents[1]), "device_id": devices[2]}
    invalid = fleet.with_defect(documents[3], "bad_ip")
    pool = [_content(f"s{n}", document) for n, document in enumerate(documents)]
    pool += [_content("s0-tampered", tampered_0), _content("s1-tampered", tampered_1)]
    pool += [Content("s3-invalid", fleet.encode(invalid)), Content("not-json", fleet.hostile_body("not_json"))]
    return pool


def _content(name: str, document: dict[str, Any]) -> Content:
    body = fleet.encode(document)
    submission = parse_submission(body, Settings(stream_name="model").limits)
    records = tuple(_comparable(record.data) for record in build_records(submission, 0, "2026-11-28T00:00:00.000000Z"))
    return Content(name, body, submission.submission_id, submission.digest, records)


def _comparable(data: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    record = dict(data) if isinstance(data, Mapping) else json.loads(data)
    for key in (_TIMESTAMP, "_shard", "_sequence_number"):
        record.pop(key, None)
    return record


@dataclass
class QueuedMessage:
    """A message on the emulated queue."""

    message_id: str
    content: Content
    handed_back_from: str | None = None

    def record(self) -> dict[str, Any]:
        """Its SQS event record."""
        record = sqs_record(self.content.body, message_id=self.message_id)
        if self.handed_back_from is not None:
            record["messageAttributes"] = {
                HANDED_BACK_FROM: {"stringValue": self.handed_back_from, "dataType": "String"}
            }
        return record


class ModelQueue:
    """The emulated SQS queue: messages waiting, and the ``SendMessageBatch`` the hand-back uses."""

    def __init__(self) -> None:
        self.waiting: list[QueuedMessage] = []
        self.by_body: dict[str, Content] = {}
        self._ids = itertools.count(1)
        self.refuse_sends = False

    def new_message(self, content: Content, handed_back_from: str | None = None) -> QueuedMessage:
        """A message the sensors (or the hand-back) sent; not yet on the queue."""
        self.by_body[content.body] = content
        return QueuedMessage(f"m-{next(self._ids):05d}", content, handed_back_from)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        """SendMessageBatch: each entry becomes a waiting message (all refused while ``refuse_sends``)."""
        if self.refuse_sends:
            raise ConnectionError("injected: SQS unreachable")
        for entry in Entries:
            origin = entry["MessageAttributes"][HANDED_BACK_FROM]["StringValue"]
            self.waiting.append(self.new_message(self.by_body[entry["MessageBody"]], handed_back_from=origin))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


class ModelQuarantine:
    """The quarantine bucket's ``PutObject``: keeps every message of every object it takes (refused
    while ``refuse_puts``)."""

    def __init__(self) -> None:
        self.stored: list[QuarantinedMessage] = []
        self.refuse_puts = False

    def put_object(self, **kwargs: Any) -> Any:
        """PutObject: decode the object as the operators' tool would, and keep its messages."""
        if self.refuse_puts:
            raise ConnectionError("injected: S3 unreachable")
        self.stored.extend(decode(kwargs["Body"]))
        return {}

    def holds(self, message_id: str, body: str) -> bool:
        """Whether the message with this id is stored with exactly this body."""
        return any(kept.message_id == message_id and kept.body == body for kept in self.stored)


class FaultyConnector:
    """Opens real connections to the ledger, except the ``refusals`` next ones (a database restarting)."""

    def __init__(self, url: str) -> None:
        self._settings = DatabaseSettings.from_url(url)
        self.refusals = 0

    def __call__(self, timeout_seconds: float | None = None) -> pg8000.native.Connection:
        if self.refusals > 0:
            self.refusals -= 1
            raise ConnectionRefusedError("injected: the database is restarting")
        return self._settings.connect(timeout_seconds)


class ScriptedKinesis:
    """Kinesis (moto) meeting one planned action per call; each call costs ``CALL_SECONDS`` of the clock.

    ``fail_first``/``fail_all``: the first/every record comes back throttled and is not written;
    ``call_fails``: the call raises before reaching the stream; ``lost_answer``: written, then raises;
    ``malformed``: written, then answers nonsense; ``kill_db``: the workers' database sessions are
    terminated first (``kill_db_and_refuse``: and new connections refused for a while);
    ``second_worker``/``steal``: another worker handles copies of this batch first (``steal``: after
    this worker's leases expired); ``steal_and_hold``: this worker's leases expire and another worker
    claims the batch's submissions and holds them, unfinished, until time passes (a paused worker).
    Anything left unplanned is ``ok``.
    """

    def __init__(self, client: Any, clock: VirtualClock, on_hook: Callable[[str], None]) -> None:
        self._client = client
        self._clock = clock
        self._on_hook = on_hook
        self.plan: deque[str] = deque()
        self.happened: Counter[str] = Counter()

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Any:
        """PutRecords, meeting the next planned action."""
        self._clock.advance(CALL_SECONDS)
        action = self.plan.popleft() if self.plan else "ok"
        self.happened[action] += 1
        if action in _HOOKS:
            self._on_hook(action)
        if action == "call_fails":
            raise ConnectionError("injected: PutRecords failed before reaching Kinesis")
        refused = {0} if action == "fail_first" else set(range(len(Records))) if action == "fail_all" else set()
        passed = [record for index, record in enumerate(Records) if index not in refused]
        answers = iter(self._client.put_records(StreamName=StreamName, Records=passed)["Records"] if passed else [])
        results = [
            {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "injected"}
            if index in refused
            else next(answers)
            for index in range(len(Records))
        ]
        if action == "lost_answer":
            raise TimeoutError("injected: PutRecords applied, its answer lost")
        if action == "malformed":
            return {"Records": "nonsense"}
        return {"FailedRecordCount": len(refused), "Records": results}


@dataclass
class ModelCheckEnvironment:
    """What every example shares: the database and the Kinesis client (moto, in process)."""

    database_url: str
    kinesis: Any
    streams: Iterator[int] = field(default_factory=itertools.count)


_ENVIRONMENT: list[ModelCheckEnvironment] = []


class PipelineMachine(RuleBasedStateMachine):
    """The state machine hypothesis explores (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        environment = _ENVIRONMENT[-1]
        self.url = environment.database_url
        self.pool = build_pool()
        self.stream = f"model-{next(environment.streams)}"
        environment.kinesis.create_stream(StreamName=self.stream, ShardCount=1)
        self.kinesis_client = environment.kinesis
        self.admin = DatabaseSettings.from_url(self.url).connect()
        self._sql("TRUNCATE submission_ledger, processor_heartbeat")
        self.clock = VirtualClock()
        self.queue = ModelQueue()
        self.quarantine = ModelQuarantine()
        self.connector = FaultyConnector(self.url)
        self.kinesis = ScriptedKinesis(environment.kinesis, self.clock, self._hook)
        self.quiet_kinesis = ScriptedKinesis(environment.kinesis, self.clock, self._hook)
        self.workers = [self._worker(self.kinesis), self._worker(self.quiet_kinesis)]
        self.current_batch: list[QueuedMessage] = []
        self.last_published: dict[str, int] = {}
        self.sent_ids: set[str] = set()
        self.ambiguous = False
        self.steps = 0

    def _worker(self, kinesis: ScriptedKinesis) -> ObservedPipeline:
        publish = PublishSettings(
            safety_margin_ms=MARGIN_MS, max_concurrency=1, max_attempts=3, backoff_base_ms=0, backoff_cap_ms=0
        )
        settings = Settings(stream_name=self.stream, publish=publish)
        ledger = Ledger(ConnectionProvider(self.connector))
        publisher = OrderedPublisher(kinesis, self.stream, publish)
        return ObservedPipeline(
            settings,
            ledger,
            publisher,
            handback=QueueHandBack(self.queue, QUEUE_URL),
            quarantine=QuarantineStore(self.quarantine, "model-quarantine", call_seconds=CALL_SECONDS),
            sleep=self.clock.sleep,
        )

    # --- rules ------------------------------------------------------------------------------------

    @rule(content=st.integers(min_value=0, max_value=7), copies=st.integers(min_value=1, max_value=3))
    def sensors_send(self, content: int, copies: int) -> None:
        """A sensor sends a submission (once, or several times: duplicates)."""
        chosen = self.pool[content]
        if chosen.submission_id is not None:
            self.sent_ids.add(chosen.submission_id)
        self.queue.waiting.extend(self.queue.new_message(chosen) for _ in range(copies))

    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """Sensors send a few messages; then some waiting messages, in some order, go to one of the two
        workers, with a budget and faults."""
        for content in data.draw(st.lists(st.integers(0, len(self.pool) - 1), max_size=3), label="sensors_send"):
            self.sensors_send(content, 1)
        waiting = self.queue.waiting
        if not waiting:
            return
        picks = data.draw(
            st.lists(st.integers(0, len(waiting) - 1), min_size=1, max_size=min(10, len(waiting)), unique=True),
            label="batch",
        )
        budget = data.draw(
            st.sampled_from([AMPLE_BUDGET_MS, AMPLE_BUDGET_MS, MARGIN_MS - 500])
            | st.integers(0, 4).map(lambda calls: MARGIN_MS + calls * 1_000 + 500),
            label="budget_ms",
        )
        worker = data.draw(st.sampled_from([0, 0, 1]), label="worker")
        # The second worker meets no faults that run another worker inside its own calls.
        actions = KINESIS_ACTIONS if worker == 0 else tuple(a for a in KINESIS_ACTIONS if a not in _HOOKS)
        plan = data.draw(st.lists(st.sampled_from(actions), max_size=6), label="kinesis_plan")
        self.queue.refuse_sends = data.draw(st.sampled_from([False, False, False, True]), label="sqs_down")
        self.quarantine.refuse_puts = data.draw(st.sampled_from([False, False, False, True]), label="s3_down")
        batch = [waiting[index] for index in picks]
        for message in batch:
            waiting.remove(message)
        pipeline = self.workers[worker]
        scripted = self.kinesis if worker == 0 else self.quiet_kinesis
        scripted.plan = deque(plan)
        self.current_batch = batch
        try:
            self._deliver(pipeline, batch, budget)
        finally:
            scripted.plan.clear()
            self.queue.refuse_sends = False
            self.quarantine.refuse_puts = False
            self.connector.refusals = 0
            self.current_batch = []
        kinesis_clients = (self.kinesis, self.quiet_kinesis)
        self.ambiguous |= any(kinesis.happened[action] for kinesis in kinesis_clients for action in AMBIGUOUS)
        self.ambiguous |= any(report.ledger_failed for worker in self.workers for report in worker.reports)

    @rule()
    def replay_the_quarantine(self) -> None:
        """An operator replays every body the quarantine holds (``quarantine replay``), unchanged."""
        for kept in self.quarantine.stored:
            self.queue.waiting.append(self.queue.new_message(self.queue.by_body[kept.body]))

    @rule()
    def kill_database_connections(self) -> None:
        """The database restarts, or the proxy drops its clients, between two invocations."""
        self._sql(_KILL_BACKENDS)

    @rule()
    def time_passes_and_leases_expire(self) -> None:
        """Long enough for every lease to expire (a worker that died mid-batch is taken over)."""
        self._sql(
            "UPDATE submission_ledger SET lease_expires_at = now() - interval '1 second' WHERE lease_owner IS NOT NULL"
        )

    # --- the system, and what the model expects of its answers ----------------------------------------

    def _deliver(self, pipeline: ObservedPipeline, batch: list[QueuedMessage], budget_ms: int) -> None:
        event = {"Records": [message.record() for message in batch]}
        context = LambdaContext(timeout_ms=budget_ms, clock=self.clock.now)
        response = handle_batch(event, context, pipeline)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        quarantine_failed = pipeline.reports[-1].quarantine_failed
        self.steps += 1
        ledger = self._ledger()
        for message in batch:
            if message.message_id in failed:
                if message.content.submission_id is None and not quarantine_failed:
                    raise Violation(f"{message.message_id}: an invalid message was not acknowledged")
                self.queue.waiting.append(message)
            else:
                self._check_acknowledged(message, ledger)

    def _hook(self, action: str) -> None:
        """An action taken while a PutRecords call of the first worker is in flight."""
        if action in ("kill_db", "kill_db_and_refuse"):
            self._sql(_KILL_BACKENDS)
            if action == "kill_db_and_refuse":
                self.connector.refusals = 1_000
            return
        if action == "steal_and_hold":
            self.time_passes_and_leases_expire()
            limits = self.workers[1].settings.limits
            contents = {message.content.name: message.content for message in self.current_batch}
            submissions = [parse_submission(c.body, limits) for c in contents.values() if c.submission_id]
            thief = Ledger(ConnectionProvider(DatabaseSettings.from_url(self.url).connect))
            try:
                thief.claim(
                    [ClaimRequest(s.submission_id, s.device_id, s.digest, len(s.events)) for s in submissions],
                    owner="paused-worker",
                    lease_seconds=3_600,
                )
            finally:
                thief.close()
            return
        if action == "steal":
            self.time_passes_and_leases_expire()
        copies = [self.queue.new_message(message.content) for message in self.current_batch]
        self._deliver(self.workers[1], copies, AMPLE_BUDGET_MS)

    def _check_acknowledged(self, message: QueuedMessage, ledger: Mapping[str, tuple[bytes, int, int, bool]]) -> None:
        """Invariant 1, for a message the function just acknowledged."""
        content = message.content
        if content.submission_id is None:
            self._check_quarantined(message)
            return  # rejected as invalid
        row = ledger.get(content.submission_id)
        if row is None:
            raise Violation(f"{message.message_id} ({content.name}) acknowledged, but the ledger has no row for it")
        digest, published, events, _ = row
        if digest != content.digest:
            self._check_quarantined(message)
            return  # rejected: the ledger holds the other content
        if published == events:
            return  # fully published (the stream invariant checks the events are there)
        if any(waiting.handed_back_from and waiting.content == content for waiting in self.queue.waiting):
            return  # handed back (this message, or an exact copy in its batch): a copy is on the queue
        raise Violation(
            f"{message.message_id} ({content.name}) acknowledged with {published} of {events} events published"
        )

    def _check_quarantined(self, message: QueuedMessage) -> None:
        """A rejected message is acknowledged only once its body is in the quarantine."""
        if not self.quarantine.holds(message.message_id, message.content.body):
            raise Violation(f"{message.message_id} ({message.content.name}) rejected and acknowledged, not quarantined")

    # --- invariants after every step -----------------------------------------------------------------

    @invariant()
    def the_stream_holds_only_the_ledgers_contents_in_order(self) -> None:
        """Invariants 2 to 4."""
        ledger = self._ledger()
        contents = {(c.submission_id, c.digest): c for c in self.pool if c.submission_id is not None}
        first_copies: dict[str, list[int]] = {}
        seen: dict[tuple[str, int], dict[str, Any]] = {}
        for raw in read_stream(self.kinesis_client, self.stream):
            record = _comparable(raw)
            submission_id, sequence = record["submission_id"], record["sequence"]
            row = ledger.get(submission_id)
            if row is None:
                raise Violation(f"published without a ledger row: {submission_id} #{sequence}")
            content = contents.get((submission_id, row[0]))
            if content is None or sequence >= len(content.records) or content.records[sequence] != record:
                raise Violation(f"a record that is not the ledger's content: {submission_id} #{sequence}")
            if (submission_id, sequence) in seen:
                continue  # a same-id copy of an event already there (checked equal above)
            seen[(submission_id, sequence)] = record
            order = first_copies.setdefault(submission_id, [])
            if sequence != len(order):
                raise Violation(f"first copies out of order: {submission_id} #{sequence} after {order}")
            order.append(sequence)
        for submission_id, (_, published, events, _) in ledger.items():
            in_stream = len(first_copies.get(submission_id, []))
            if published > in_stream:
                raise Violation(f"{submission_id}: the ledger says {published} published, the stream has {in_stream}")
            if published < self.last_published.get(submission_id, 0):
                raise Violation(f"{submission_id}: the published prefix shrank to {published}")
            if published > events:
                raise Violation(f"{submission_id}: {published} published of {events}")
            self.last_published[submission_id] = published

    def teardown(self) -> None:
        """Eventual completion: faults stop, leases expire, the queue drains; everything sent completes."""
        try:
            if self.steps or self.queue.waiting:
                self._drain()
        finally:
            for pipeline in self.workers:
                pipeline.publisher.close()
                pipeline.ledger.close()
            self.admin.close()

    def _drain(self) -> None:
        self.connector.refusals = 0
        for _ in range(8):
            self.time_passes_and_leases_expire()
            waiting, self.queue.waiting = self.queue.waiting, []
            if not waiting:
                break
            for start in range(0, len(waiting), 10):
                self._deliver(self.workers[0], waiting[start : start + 10], AMPLE_BUDGET_MS)
            self.the_stream_holds_only_the_ledgers_contents_in_order()
        if self.queue.waiting:
            raise Violation(f"still failing after the faults stopped: {[m.message_id for m in self.queue.waiting]}")
        ledger = self._ledger()
        for submission_id in self.sent_ids:
            row = ledger.get(submission_id)
            if row is None or row[1] != row[2] or not row[3]:
                raise Violation(f"{submission_id} never completed: {row}")
        if not self.ambiguous:
            records = read_stream(self.kinesis_client, self.stream)
            keys = Counter((record["submission_id"], record["sequence"]) for record in records)
            duplicated = [key for key, count in keys.items() if count > 1]
            if duplicated:
                raise Violation(f"records written twice without an ambiguous fault: {duplicated}")

    def happened(self) -> Counter[str]:
        """What this example exercised (see :class:`ModelCheckResult`)."""
        counts = self.kinesis.happened + self.quiet_kinesis.happened
        for report in (report for worker in self.workers for report in worker.reports):
            counts["deadline_stops"] += report.stopped_by_deadline
            counts["handed_back"] += report.handed_back
            counts["ledger_failures"] += report.ledger_failed
            counts["leases_lost"] += report.leases_lost
            counts["gave_up"] += report.publish.gave_up
            counts["duplicates_suppressed"] += report.duplicates_suppressed
            counts["rejected"] += sum(report.rejected.values())
            counts["conflicting_duplicates"] += report.rejected.get("conflicting_duplicate", 0)
            counts["quarantined"] += sum(report.quarantined.values())
            counts["quarantine_failures"] += report.quarantine_failed
        return counts

    def _ledger(self) -> dict[str, tuple[bytes, int, int, bool]]:
        rows = self._sql(
            "SELECT submission_id::text, content_digest, published_count, event_count, completed_at IS NOT NULL"
            " FROM submission_ledger"
        )
        return {row[0]: (bytes(row[1]), row[2], row[3], row[4]) for row in rows}

    def _sql(self, statement: str) -> list[list[Any]]:
        """A statement on the checker's own session (which the faults never kill)."""
        rows: list[list[Any]] = self.admin.run(statement)
        return rows or []


@dataclass(frozen=True)
class ModelCheckResult:
    """How much the checker explored: examples, deliveries, and how often each fault and outcome
    occurred (Kinesis actions by name, and the pipeline's deadline stops, hand-backs, ledger
    failures, leases lost, rejections, duplicates suppressed)."""

    examples: int
    steps: int
    happened: dict[str, int]


def run_model_check(
    database_url: str, *, examples: int, seed: int | None = None, steps_per_example: int = 30
) -> ModelCheckResult:
    """Run the state machine for ``examples`` examples on ``database_url`` (migrated); raise on a
    violation (hypothesis shrinks it to a minimal sequence of steps first). A ``seed`` makes the
    examples the same on every run (``make test``); without one each run explores new ones."""
    counted = Counter[str]()
    happened = Counter[str]()

    class Counted(PipelineMachine):
        def __init__(self) -> None:
            super().__init__()
            counted["examples"] += 1

        def teardown(self) -> None:
            try:
                super().teardown()
            finally:
                counted["steps"] += self.steps
                happened.update(self.happened())

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock_aws())
        stack.enter_context(serialised_moto_shards())
        kinesis = boto3.client(
            "kinesis",
            region_name=REGION,
            aws_access_key_id="model",
            aws_secret_access_key="model",  # noqa: S106
        )
        _ENVIRONMENT.append(ModelCheckEnvironment(database_url, kinesis))
        try:
            run_state_machine_as_test(
                Counted if seed is None else hypothesis.seed(seed)(Counted),
                settings=settings(
                    max_examples=examples,
                    stateful_step_count=steps_per_example,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                ),
            )
        finally:
            _ENVIRONMENT.pop()
    return ModelCheckResult(counted["examples"], counted["steps"], dict(sorted(happened.items())))


def examples_from_env(default: int) -> int:
    """``MODEL_CHECK_EXAMPLES`` when set (``make chaos`` raises it), else ``default``."""
    raw = os.environ.get("MODEL_CHECK_EXAMPLES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


__all__ = ["PipelineMachine", "Violation", "build_pool", "examples_from_env", "run_model_check"]


def model_check_for_chaos(
    examples: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """``make chaos``'s run of the checker: ``examples`` new examples on a fresh database, in chunks of
    ``_CHUNK`` so a stop request is honoured within one chunk and progress is reported after each; the
    figures, or the violation hypothesis found (shrunk), for ``build/chaos.json``."""
    from devkit.postgres import provisioned_database

    done = steps = 0
    happened = Counter[str]()
    with provisioned_database() as url:
        while done < examples and not should_stop():
            try:
                result = run_model_check(url, examples=min(_CHUNK, examples - done))
            except Exception as error:  # a violation (or a crash of the checker): reported, not raised
                return {"ok": False, "examples": done, "violation": f"{type(error).__name__}: {error}"[:20_000]}
            done, steps = done + result.examples, steps + result.steps
            happened.update(result.happened)
            progress(f"model check: {done} of {examples} examples, {steps} deliveries, no violation")
    return {"ok": True, "examples": done, "steps": steps, "happened": dict(sorted(happened.items()))}


_CHUNK = 50


def default_examples(duration_seconds: float) -> int:
    """``make chaos``'s default: one example per second of faults, from 10 to 2,000."""
    return max(10, min(2_000, int(duration_seconds)))
