"""One SQS batch, end to end: decode and validate, claim in the ledger, publish, record the outcome.

All I/O happens per batch, not per message: one claim statement, the Kinesis calls the ordering
guarantee needs, one outcome statement. The result says, for every message, whether SQS may delete
it; everything not acknowledged is reported as a batch item failure and redelivered.

Acknowledged means one of: every event is in Kinesis and this invocation recorded it; the submission
was rejected (invalid, or another content is the one the ledger holds) and its body is kept in the
quarantine (:mod:`telemetry_adapter.quarantine`; at once when none is configured); it is a duplicate of a
submission that is fully published; or the time budget stopped it after recorded progress and a copy
of it is back on the queue (:mod:`telemetry_adapter.handback`). Anything else (ledger unreachable,
another worker holding or having taken the lease, events left unpublished) is a failure, logged once
with the reason (:mod:`telemetry_adapter.message_log`), so SQS redelivers it and, after
``maxReceiveCount`` receives, moves it to the dead-letter queue.

Once the batch is decided, :meth:`BatchPipeline.conclude` (called by the handler after ``process``)
tells the circuit breaker what the batch found (:mod:`telemetry_adapter.circuit_breaker`) and gives
every failed message its backoff visibility (:mod:`telemetry_adapter.backoff`).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from telemetry_adapter.backoff import VisibilityBackoff
from telemetry_adapter.circuit_breaker import Admission, BreakerState, CircuitBreaker, Outcome, batch_outcome
from telemetry_adapter.config import Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.errors import error_code
from telemetry_adapter.handback import Copy, QueueHandBack
from telemetry_adapter.ledger.repository import (
    Budget,
    BudgetExhausted,
    Claim,
    ClaimKey,
    ClaimRequest,
    ClaimStatus,
    Ledger,
)
from telemetry_adapter.message_log import Failure, MessageIdentity, log_failure, log_rejection
from telemetry_adapter.observability import logger
from telemetry_adapter.publisher import OrderedPublisher, PublishJob, PublishStats
from telemetry_adapter.quarantine import QuarantineStore, Rejection
from telemetry_adapter.records import build_records, processing_timestamp
from telemetry_adapter.rejections import Reason, Rejected
from telemetry_adapter.submission import Submission, decode_body, parsed_id, validate_document
from telemetry_adapter.time_budget import (
    BACKOFF_CALL_TIMEOUT_MS,
    HANDBACK_CALL_TIMEOUT_MS,
    RECONNECT_FLOOR_MS,
    response_slack_seconds,
    sqs_call_allowance_seconds,
)

# Retrying the outcome statement: first pause and longest pause. A retry happens only while a pause, a
# reconnect and the statement still fit the invocation's budget.
_OUTCOME_RETRY_FIRST_DELAY = 0.1
_OUTCOME_RETRY_MAX_DELAY = 1.0


@dataclass
class BatchReport:
    """What happened to one batch: the partial batch response and the figures for metrics."""

    received: int = 0
    failed_message_ids: list[str] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates_suppressed: int = 0
    busy: int = 0
    """Submissions another live worker was publishing (retried later)."""
    events_published: int = 0
    submissions_completed: int = 0
    ledger_failed: bool = False
    ledger_error: str | None = None
    """The exception class of the ledger's last failure, for the failed messages' log lines."""
    handed_back: int = 0
    """Messages stopped by the budget after progress, acknowledged once a copy was back on the queue."""
    leases_lost: int = 0
    """Claimed submissions whose lease another worker took over before the outcome (not acknowledged)."""
    claim_skipped: bool = False
    """The invocation had no time left to claim the batch (a deadline stop, not a ledger failure)."""
    outcome_skipped: bool = False
    """The invocation had no time left to record the outcome (a deadline stop, not a ledger failure)."""
    decoder_errors: int = 0
    """Messages whose decoding raised something other than a rejection (a bug; each fails alone)."""
    publish: PublishStats = field(default_factory=PublishStats)
    admission: Admission = Admission.NOT_ASKED
    """What the circuit breaker said to this batch (refused: no claim, no PutRecords)."""
    breaker_state: BreakerState = BreakerState.CLOSED
    """The breaker's state once this batch's outcome was taken into account."""
    backed_off: int = 0
    """Failed messages whose visibility was set to their backoff delay."""
    backoff_failures: int = 0
    """Failed messages whose backoff could not be set (they come back after the visibility timeout)."""
    rejections: list[Rejection] = field(default_factory=list)
    """The batch's rejected messages, in the order they were decided, for the quarantine."""
    quarantined: Counter[str] = field(default_factory=Counter)
    """Rejected messages stored in the quarantine, by reason."""
    quarantine_failed: bool = False
    """The batch's rejected messages could not be stored (write failed, or no time left for it)."""
    quarantine_error: str | None = None

    @property
    def stopped_by_deadline(self) -> bool:
        """Whether the time budget stopped the batch before it was done (claim, publishing or outcome)."""
        return self.claim_skipped or self.publish.stopped_by_deadline or self.outcome_skipped

    @property
    def acknowledged(self) -> int:
        """Messages SQS may delete."""
        return self.received - len(self.failed_message_ids)


@dataclass(frozen=True, slots=True)
class _Message:
    identity: MessageIdentity
    body: str
    submission: Submission
    record: Mapping[str, Any]
    """The SQS record as delivered (its attributes go into the quarantine if it is rejected later)."""

    @property
    def key(self) -> ClaimKey:
        return (self.submission.submission_id, self.submission.digest)

    @property
    def message_id(self) -> str:
        return self.identity.message_id


@dataclass(frozen=True, slots=True)
class _Fate:
    """What became of a primary message, which its exact copies in the batch share."""

    acknowledged: bool
    conflict: bool = False
    failure: Failure | None = None
    error: str | None = None
    progress: tuple[int, int] | None = None
    """Published prefix and event count, for a submission this invocation was publishing."""


_ACKNOWLEDGED = _Fate(acknowledged=True)
_CONFLICT = _Fate(acknowledged=True, conflict=True)


class BatchPipeline:
    """Processes SQS batches against one ledger and one publisher."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        publisher: OrderedPublisher,
        *,
        handback: QueueHandBack | None = None,
        backoff: VisibilityBackoff | None = None,
        breaker: CircuitBreaker | None = None,
        quarantine: QuarantineStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.publisher = publisher
        self.handback = handback
        """Sends a copy of a message the budget stopped after progress back to the queue; without it
        (no ``QUEUE_URL``, as in a bare ``sam local invoke``) such a message is reported as a failure."""
        self.backoff = backoff
        """Sets failed messages' backoff visibility; without it (no ``QUEUE_URL``) they come back after
        the queue's visibility timeout."""
        self.breaker = breaker or CircuitBreaker(settings.breaker)
        """This process's circuit breaker: one per pipeline, and the processor builds one pipeline."""
        self.quarantine = quarantine
        """Keeps rejected messages before they are acknowledged; without it (no ``QUARANTINE_BUCKET``)
        they are only counted and logged."""
        self._sleep = sleep
        self.worker_id = f"worker-{uuid.uuid4()}"
        """Identifies this process in the heartbeat table."""

    def _statement_budget(self, deadline: Deadline) -> Budget:
        """What a ledger statement may take: the time left, less the slack kept for the response."""
        slack = response_slack_seconds(self.settings.publish.safety_margin_ms)
        return lambda: deadline.remaining() - slack

    @staticmethod
    def _reserving(budget: Budget, seconds: float) -> Budget:
        """``budget`` less ``seconds`` kept in hand for what comes after the statement."""
        return lambda: budget() - seconds

    def _backoff_reserve_seconds(self) -> float:
        """The time one backoff call needs beyond the response slack (none without a backoff)."""
        if self.backoff is None:
            return 0.0
        return sqs_call_allowance_seconds(BACKOFF_CALL_TIMEOUT_MS, self.settings.publish.safety_margin_ms)

    def process(self, records: Sequence[Mapping[str, Any]], deadline: Deadline) -> BatchReport:
        """Process one batch of SQS records within the deadline; never raises for a bad message.

        However the batch ends (early returns included), its rejected messages go to the quarantine
        last, in one write, and are acknowledged only if they were stored (:meth:`_quarantine`).

        Should an exception escape all the same (a bug, a MemoryError), the circuit breaker is settled
        before it propagates: a probe batch that crashed counts as a failed probe, so the breaker
        never stays waiting for an outcome that will not come (``conclude`` is never called then)."""
        report = BatchReport(received=len(records))
        try:
            self._decide(records, deadline, report)
            self._quarantine(report, deadline)
        except BaseException:
            self.breaker.abandon(report.admission)
            raise
        return report

    def _decide(self, records: Sequence[Mapping[str, Any]], deadline: Deadline, report: BatchReport) -> None:
        """Decode, claim, publish and record the batch into ``report``; settle every message but the
        rejected ones' storage."""
        # The first copy of each (id, content) pair is its primary; exact copies follow its fate. Copies
        # of one id with different contents are separate primaries, decided by the ledger alone.
        primaries: dict[ClaimKey, _Message] = {}
        followers: list[_Message] = []
        for record in records:
            message = self._decode(record, report)
            if message is None:
                continue
            if message.key in primaries:
                followers.append(message)
            else:
                primaries[message.key] = message
        if not primaries:
            self._heartbeat(report, deadline)
            return

        report.admission = self.breaker.admit()
        if report.admission is Admission.REFUSED:  # fail fast: no claim, no PutRecords
            for message in [*primaries.values(), *followers]:
                _fail(report, message, _Fate(False, failure=Failure.BREAKER_OPEN, error=self.breaker.cause))
            return
        owner = f"invocation-{uuid.uuid4()}"
        try:
            if not deadline.may_start_work():
                raise BudgetExhausted("less than the safety margin left: the batch is not claimed")
            claims = self.ledger.claim(
                [_claim_request(message.submission) for message in primaries.values()],
                owner=owner,
                lease_seconds=deadline.remaining() + self.settings.publish.lease_grace_seconds,
                budget=self._statement_budget(deadline),
            )
        except BudgetExhausted:
            # Not a ledger failure: the invocation ran out of time before the claim could be sent.
            report.claim_skipped = True
            for message in [*primaries.values(), *followers]:
                _fail(report, message, _Fate(False, failure=Failure.DEADLINE, error="BudgetExhausted"))
            return
        except Exception as error:
            logger.exception("ledger claim failed; the batch's valid messages will be redelivered")
            report.ledger_failed = True
            report.ledger_error = error_code(error)
            for message in [*primaries.values(), *followers]:
                _fail(report, message, _Fate(False, failure=Failure.LEDGER_FAILED, error=report.ledger_error))
            return

        jobs = self._publish(primaries, claims, deadline, report)
        recorded = self._record_outcome(jobs, claims, owner, report, deadline)
        fates, continuing = self._settle_primaries(primaries, claims, jobs, recorded, report)
        self._hand_back(continuing, claims=claims, jobs=jobs, fates=fates, report=report, deadline=deadline)
        self._settle_followers(followers, fates, report)

    def _quarantine(self, report: BatchReport, deadline: Deadline) -> None:
        """Store the batch's rejected messages in one write before they are acknowledged (guarantee 5).

        Without a store they are acknowledged at once (counted and logged only). When the write fails,
        or the invocation's budget cannot hold it, every one of them becomes a batch item failure: SQS
        redelivers it, it is decided again, and after ``maxReceiveCount`` receives the dead-letter queue
        keeps its body. Nothing of it is published either way."""
        pending = report.rejections
        if not pending or self.quarantine is None:
            return
        slack = response_slack_seconds(self.settings.publish.safety_margin_ms)
        if deadline.remaining() - slack < self.quarantine.call_seconds:
            error = "BudgetExhausted"
        else:
            try:
                self.quarantine.store(pending)
            except Exception as failure:
                error = error_code(failure)
                logger.warning("quarantine write failed", extra={"count": len(pending), "error": error})
            else:
                report.quarantined.update(rejection.reason.value for rejection in pending)
                return
        report.quarantine_failed = True
        report.quarantine_error = error
        for rejection in pending:
            report.failed_message_ids.append(rejection.identity.message_id)
            log_failure(rejection.identity, Failure.QUARANTINE_FAILED, error=error)

    def _heartbeat(self, report: BatchReport, deadline: Deadline) -> None:
        """Show the health check this processor is alive when the batch had nothing to claim. Best
        effort: the batch's messages are settled whatever happens here."""
        try:
            self.ledger.record_heartbeat(
                worker=self.worker_id,
                batch_size=report.received,
                breaker=self.breaker.state.value,
                budget=self._statement_budget(deadline),
            )
        except Exception as error:
            logger.warning("heartbeat not written", extra={"error": error_code(error)})

    def _decode(self, record: Mapping[str, Any], report: BatchReport) -> _Message | None:
        identity = MessageIdentity.of(record)
        try:
            body = record.get("body")
            try:
                document = decode_body(body, self.settings.limits)
            except Rejected as rejection:
                _reject(report, identity, rejection.reason, rejection.detail, record)
                return None
            try:
                submission = validate_document(document, self.settings.limits)
            except Rejected as rejection:
                parsed = replace(
                    identity,
                    submission_id=parsed_id(document, "submission_id"),
                    device_id=parsed_id(document, "device_id"),
                )
                _reject(report, parsed, rejection.reason, rejection.detail, record)
                return None
            return _Message(
                replace(identity, submission_id=submission.submission_id, device_id=submission.device_id),
                str(body),
                submission,
                record,
            )
        except Exception as error:
            # Decoding is meant to be total (every bad body is a Rejected); anything else is a bug
            # met by this one message. It fails alone, so SQS keeps it and, after its retries, the
            # dead-letter queue holds the body for a fix; its neighbours go on.
            report.decoder_errors += 1
            report.failed_message_ids.append(identity.message_id)
            log_failure(identity, Failure.DECODER_ERROR, error=error_code(error))
            return None

    def _publish(
        self,
        primaries: Mapping[ClaimKey, _Message],
        claims: Mapping[ClaimKey, Claim],
        deadline: Deadline,
        report: BatchReport,
    ) -> dict[ClaimKey, PublishJob]:
        timestamp = processing_timestamp()
        # In batch order (not the claim answer's row order), so a batch is always published the same way.
        # At most one content of an id is claimed, so at most one job publishes each submission.
        jobs = {
            key: PublishJob(key[0], build_records(message.submission, claims[key].published, timestamp))
            for key, message in primaries.items()
            if claims[key].status is ClaimStatus.CLAIMED
        }
        report.publish = self.publisher.publish(list(jobs.values()), deadline)
        report.events_published = report.publish.records_sent
        return jobs

    def _record_outcome(
        self,
        jobs: Mapping[ClaimKey, PublishJob],
        claims: Mapping[ClaimKey, Claim],
        owner: str,
        report: BatchReport,
        deadline: Deadline,
    ) -> set[str]:
        """Record the batch's progress, retrying with backoff while the invocation has time for it;
        return the submission ids whose rows this owner wrote (none when the ledger failed).

        A failover or restart of the database usually lasts seconds; retrying inside the safety margin
        saves the whole batch from redelivery (and its finished submissions from being re-sent).

        The retries keep one backoff call in hand (:meth:`_backoff_reserve_seconds`): when they fail,
        every claimed message of the batch is a failure, and without the time for its backoff each would
        come back after the visibility timeout, spending receives faster than the outage tolerance
        counts on. The first attempt may use the whole budget: it is what the safety margin holds.
        """
        progress = {key[0]: claims[key].published + job.sent for key, job in jobs.items()}
        budget = self._statement_budget(deadline)
        retry_budget = self._reserving(budget, self._backoff_reserve_seconds())
        delay = _OUTCOME_RETRY_FIRST_DELAY
        while True:
            try:
                return self.ledger.record_outcome(
                    progress,
                    owner=owner,
                    worker=self.worker_id,
                    batch_size=report.received,
                    breaker=self.breaker.state.value,
                    budget=budget,
                )
            except BudgetExhausted:
                if report.ledger_error is None:
                    # Not a ledger failure: the invocation ran out of time before the statement could be
                    # sent (a deadline stop, which must not fire the "database down" alarm). After a
                    # failed attempt, the failure that cost the time stands.
                    report.outcome_skipped = True
                    logger.warning(
                        "no time left to record the outcome; the batch resumes from the last recorded prefix"
                    )
                    return set()
                break
            except Exception as error:
                report.ledger_error = error_code(error)
                # Retry only if, after the pause, a reconnect and the statement still fit the budget
                # with the backoff's call kept in hand; the retry itself must leave it untouched.
                budget = retry_budget
                if budget() < delay + RECONNECT_FLOOR_MS / 1000:
                    break
                logger.warning("ledger outcome failed; retrying", extra={"retry_in_s": delay}, exc_info=True)
                self._sleep(delay)
                delay = min(delay * 2, _OUTCOME_RETRY_MAX_DELAY)
        # No submission claimed here is acknowledged, finished ones included: acknowledged, their rows
        # would stay unfinished for good (no redelivery would ever complete them, and a later duplicate
        # would be published again). Redelivered, they resume from the last recorded prefix once the
        # lease expires, and the re-sent records carry the same ids.
        logger.error(
            "ledger outcome failed; the batch resumes from the last recorded prefix",
            extra={"last_error": report.ledger_error},
        )
        report.ledger_failed = True
        return set()

    def _settle_primaries(
        self,
        primaries: Mapping[ClaimKey, _Message],
        claims: Mapping[ClaimKey, Claim],
        jobs: Mapping[ClaimKey, PublishJob],
        recorded: set[str],
        report: BatchReport,
    ) -> tuple[dict[ClaimKey, _Fate], list[_Message]]:
        """Decide each primary message; return the fate its exact copies in the batch follow, and
        the messages to hand back (decided by :meth:`_hand_back`).

        A claimed submission is acknowledged only if the outcome reported its row (written by this
        invocation, or already holding its progress with no lease on it: see ``record_outcome``): when
        another worker took the lease over meanwhile (this one paused past its lease), the submission
        is that worker's to finish, so here it is reported as a failure.
        """
        fates: dict[ClaimKey, _Fate] = {}
        continuing: list[_Message] = []
        ids_in_batch = Counter(key[0] for key in primaries)
        for key, message in primaries.items():
            status = claims[key].status
            if status is ClaimStatus.CLAIMED:
                job = jobs[key]
                if job.done and key[0] in recorded:
                    report.submissions_completed += 1
                    fates[key] = _ACKNOWLEDGED
                elif key[0] in recorded and job.sent > 0 and not job.given_up:
                    continuing.append(message)  # stopped by the budget with its progress recorded
                else:
                    fate = self._unfinished(job, key[0] in recorded, report)
                    progress = (claims[key].published + job.sent, len(message.submission.events))
                    fates[key] = _fail(report, message, replace(fate, progress=progress))
            elif status is ClaimStatus.COMPLETED:
                report.duplicates_suppressed += 1
                fates[key] = _ACKNOWLEDGED
            elif status is ClaimStatus.CONFLICT:
                _reject(report, message.identity, Reason.CONFLICTING_DUPLICATE, "content", message.record)
                fates[key] = _CONFLICT
            elif ids_in_batch[key[0]] > 1:  # the ledger held neither content: the batch's first was claimed
                fates[key] = _fail(report, message, _Fate(False, failure=Failure.AWAITS_LEDGER))
            else:
                report.busy += 1
                fates[key] = _fail(report, message, _Fate(False, failure=Failure.BUSY))
        return fates, continuing

    def conclude(self, records: Sequence[Mapping[str, Any]], report: BatchReport, deadline: Deadline) -> None:
        """After ``process`` (and whatever it decided last): tell the breaker what the batch found,
        show an open breaker in the heartbeat when the ledger is not what failed, and back off every
        message reported as a failure. Changes no message's fate; never raises for a dependency."""
        outcome = batch_outcome(
            report.admission,
            ledger_failed=report.ledger_failed,
            claim_skipped=report.claim_skipped,
            put_calls=report.publish.calls + report.publish.calls_blocked,  # a blocked call failed, unanswered
            records_sent=report.publish.records_sent,
            cause=self.breaker.cause,
        )
        report.breaker_state = self.breaker.record(report.admission, outcome)
        kinesis_open = report.breaker_state is not BreakerState.CLOSED and self.breaker.cause is Outcome.KINESIS_FAILED
        if kinesis_open and report.admission is not Admission.NOT_ASKED:
            # The health function reads the breaker from the heartbeat table (a batch with nothing to
            # claim wrote it already). An open breaker caused by the ledger cannot be written there,
            # and the health answer shows the ledger failing anyway.
            self._heartbeat(report, deadline)
        if self.backoff is not None and report.failed_message_ids:
            result = self.backoff.apply(
                records, report.failed_message_ids, deadline, self.settings.publish.safety_margin_ms
            )
            report.backed_off, report.backoff_failures = result.backed_off, result.failed

    @staticmethod
    def _unfinished(job: PublishJob, recorded: bool, report: BatchReport) -> _Fate:
        """Why a claimed submission is not acknowledged."""
        if report.outcome_skipped:
            return _Fate(False, failure=Failure.DEADLINE, error=job.last_error)
        if report.ledger_failed:
            return _Fate(False, failure=Failure.LEDGER_FAILED, error=report.ledger_error)
        if not recorded:
            report.leases_lost += 1
            return _Fate(False, failure=Failure.LEASE_LOST, error=job.last_error)
        if job.given_up:
            return _Fate(False, failure=Failure.GAVE_UP, error=job.last_error)
        if report.publish.calls_blocked:
            return _Fate(False, failure=Failure.KINESIS_BLOCKED, error=job.last_error or "CallTimedOut")
        return _Fate(False, failure=Failure.DEADLINE, error=job.last_error)

    def _hand_back(
        self,
        continuing: Sequence[_Message],
        *,
        claims: Mapping[ClaimKey, Claim],
        jobs: Mapping[ClaimKey, PublishJob],
        fates: dict[ClaimKey, _Fate],
        report: BatchReport,
        deadline: Deadline,
    ) -> None:
        """Send a copy of each message that made progress back to the queue and acknowledge it, so a
        long submission never spends receives towards the dead-letter queue while it moves forward.
        Without a hand-back, with too little time left for the call that would carry its copy (checked
        before each call), or when SQS does not take a copy, the message is reported as a failure
        instead (and is redelivered as usual)."""
        if not continuing:
            return
        slack = response_slack_seconds(self.settings.publish.safety_margin_ms)
        taken: set[str] = set()
        errors: dict[str, str] = {}
        if self.handback is not None:
            taken, errors = self.handback.send(
                [Copy(message.message_id, message.body) for message in continuing],
                may_send=lambda: deadline.remaining() - slack >= HANDBACK_CALL_TIMEOUT_MS / 1000,
            )
        for message in continuing:
            if message.message_id in taken:
                report.handed_back += 1
                fates[message.key] = _ACKNOWLEDGED
                published = claims[message.key].published + jobs[message.key].sent
                logger.info(
                    "message handed back to the queue",
                    extra={**message.identity.fields(), "published": published},
                )
            else:
                job = jobs[message.key]
                progress = (claims[message.key].published + job.sent, len(message.submission.events))
                if message.message_id in errors:
                    fate = _Fate(False, failure=Failure.HAND_BACK_FAILED, error=errors[message.message_id])
                else:
                    fate = _Fate(False, failure=Failure.DEADLINE, error=job.last_error)
                fates[message.key] = _fail(report, message, replace(fate, progress=progress))

    @staticmethod
    def _settle_followers(followers: Sequence[_Message], fates: Mapping[ClaimKey, _Fate], report: BatchReport) -> None:
        """Exact copies of a submission inside the batch follow their first copy's fate."""
        for message in followers:
            fate = fates[message.key]
            if fate.conflict:
                _reject(report, message.identity, Reason.CONFLICTING_DUPLICATE, "content", message.record)
            elif fate.acknowledged:
                report.duplicates_suppressed += 1
            else:
                _fail(report, message, fate)


def _claim_request(submission: Submission) -> ClaimRequest:
    return ClaimRequest(submission.submission_id, submission.device_id, submission.digest, len(submission.events))


def _reject(
    report: BatchReport, identity: MessageIdentity, reason: Reason, detail: str, record: Mapping[str, Any]
) -> None:
    """Count and log a rejection, and keep the message for the quarantine step."""
    report.rejected[reason.value] += 1
    report.rejections.append(Rejection(identity, reason, detail, record))
    log_rejection(identity, reason, detail)


def _fail(report: BatchReport, message: _Message, fate: _Fate) -> _Fate:
    """Report ``message`` as a batch item failure and log why, once; return its fate for its copies."""
    report.failed_message_ids.append(message.message_id)
    assert fate.failure is not None
    log_failure(message.identity, fate.failure, error=fate.error, progress=fate.progress)
    return fate
