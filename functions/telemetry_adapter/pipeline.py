"""One SQS batch, end to end: decode and validate, claim in the ledger, publish, record the outcome.

All I/O happens per batch, not per message: one claim statement, the Kinesis calls the ordering
guarantee needs, one outcome statement. The result says, for every message, whether SQS may delete
it; everything not acknowledged is reported as a batch item failure and redelivered.

Acknowledged means one of: every event is in Kinesis; the submission was rejected (invalid, or a
conflicting duplicate); or it is a duplicate of a submission that is fully published. Anything else
(ledger unreachable, another worker holding the lease, events left unpublished) is a failure, so SQS
redelivers it and, after ``maxReceiveCount`` receives, moves it to the dead-letter queue.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from telemetry_adapter.config import Settings
from telemetry_adapter.deadline import Deadline
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
from telemetry_adapter.observability import logger
from telemetry_adapter.publisher import OrderedPublisher, PublishJob, PublishStats
from telemetry_adapter.records import build_records, processing_timestamp
from telemetry_adapter.rejections import Reason, Rejected
from telemetry_adapter.submission import Submission, parse_submission
from telemetry_adapter.time_budget import HANDBACK_CALL_TIMEOUT_MS, RECONNECT_FLOOR_MS, response_slack_seconds

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
    handed_back: int = 0
    """Messages stopped by the budget after progress, acknowledged once a copy was back on the queue."""
    leases_lost: int = 0
    """Claimed submissions whose lease another worker took over before the outcome (not acknowledged)."""
    claim_skipped: bool = False
    """The invocation had no time left to claim the batch (a deadline stop, not a ledger failure)."""
    decoder_errors: int = 0
    """Messages whose decoding raised something other than a rejection (a bug; each fails alone)."""
    publish: PublishStats = field(default_factory=PublishStats)

    @property
    def stopped_by_deadline(self) -> bool:
        """Whether the time budget stopped the batch before it was done (claim or publishing)."""
        return self.claim_skipped or self.publish.stopped_by_deadline

    @property
    def acknowledged(self) -> int:
        """Messages SQS may delete."""
        return self.received - len(self.failed_message_ids)


@dataclass(frozen=True, slots=True)
class _Message:
    message_id: str
    body: str
    submission: Submission

    @property
    def key(self) -> ClaimKey:
        return (self.submission.submission_id, self.submission.digest)


class BatchPipeline:
    """Processes SQS batches against one ledger and one publisher."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        publisher: OrderedPublisher,
        *,
        handback: QueueHandBack | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.publisher = publisher
        self.handback = handback
        """Sends a copy of a message the budget stopped after progress back to the queue; without it
        (no ``QUEUE_URL``, as in a bare ``sam local invoke``) such a message is reported as a failure."""
        self._sleep = sleep
        self.worker_id = f"worker-{uuid.uuid4()}"
        """Identifies this process in the heartbeat table."""

    def _statement_budget(self, deadline: Deadline) -> Budget:
        """What a ledger statement may take: the time left, less the slack kept for the response."""
        slack = response_slack_seconds(self.settings.publish.safety_margin_ms)
        return lambda: deadline.remaining() - slack

    def process(self, records: Sequence[Mapping[str, Any]], deadline: Deadline) -> BatchReport:
        """Process one batch of SQS records within the deadline; never raises for a bad message."""
        report = BatchReport(received=len(records))
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
            return report

        owner = f"invocation-{uuid.uuid4()}"
        budget = self._statement_budget(deadline)
        try:
            if not deadline.may_start_work():
                raise BudgetExhausted("less than the safety margin left: the batch is not claimed")
            claims = self.ledger.claim(
                [_claim_request(message.submission) for message in primaries.values()],
                owner=owner,
                lease_seconds=deadline.remaining() + self.settings.publish.lease_grace_seconds,
                budget=budget,
            )
        except BudgetExhausted:
            # Not a ledger failure: the invocation ran out of time before the claim could be sent.
            logger.warning("no time left to claim the batch; its valid messages will be redelivered")
            report.claim_skipped = True
            report.failed_message_ids.extend(message.message_id for message in [*primaries.values(), *followers])
            return report
        except Exception:
            logger.exception("ledger claim failed; the batch's valid messages will be redelivered")
            report.ledger_failed = True
            report.failed_message_ids.extend(message.message_id for message in [*primaries.values(), *followers])
            return report

        jobs = self._publish(primaries, claims, deadline, report)
        recorded = self._record_outcome(jobs, claims, owner, report, deadline)
        fates, continuing = self._settle_primaries(primaries, claims, jobs, recorded, report)
        self._hand_back(continuing, fates, report, deadline)
        self._settle_followers(followers, fates, report)
        return report

    def _heartbeat(self, report: BatchReport, deadline: Deadline) -> None:
        """Show the health check this processor is alive when the batch had nothing to claim. Best
        effort: the batch's messages are settled whatever happens here."""
        try:
            self.ledger.record_heartbeat(
                worker=self.worker_id, batch_size=report.received, budget=self._statement_budget(deadline)
            )
        except Exception as error:
            logger.warning("heartbeat not written", extra={"error": type(error).__name__})

    def _decode(self, record: Mapping[str, Any], report: BatchReport) -> _Message | None:
        message_id = str(record.get("messageId", ""))
        try:
            body = record.get("body")
            return _Message(message_id, str(body), parse_submission(body, self.settings.limits))
        except Rejected as rejection:
            _reject(report, message_id, rejection.reason, rejection.detail)
            return None
        except Exception as error:
            # Decoding is meant to be total (every bad body is a Rejected); anything else is a bug
            # met by this one message. It fails alone, so SQS keeps it and, after its retries, the
            # dead-letter queue holds the body for a fix; its neighbours go on.
            report.decoder_errors += 1
            report.failed_message_ids.append(message_id)
            logger.exception(
                "message could not be decoded", extra={"message_id": message_id, "error": type(error).__name__}
            )
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
        """
        progress = {key[0]: claims[key].published + job.sent for key, job in jobs.items()}
        budget = self._statement_budget(deadline)
        delay = _OUTCOME_RETRY_FIRST_DELAY
        while True:
            try:
                return self.ledger.record_outcome(
                    progress, owner=owner, worker=self.worker_id, batch_size=report.received, budget=budget
                )
            except BudgetExhausted:
                break
            except Exception:
                # Retry only if, after the pause, a reconnect and the statement still fit the budget.
                if budget() < delay + RECONNECT_FLOOR_MS / 1000:
                    break
                logger.warning("ledger outcome failed; retrying", extra={"retry_in_s": delay}, exc_info=True)
                self._sleep(delay)
                delay = min(delay * 2, _OUTCOME_RETRY_MAX_DELAY)
        # No submission claimed here is acknowledged, finished ones included: acknowledged, their rows
        # would stay unfinished for good (no redelivery would ever complete them, and a later duplicate
        # would be published again). Redelivered, they resume from the last recorded prefix once the
        # lease expires, and the re-sent records carry the same ids.
        logger.exception("ledger outcome failed; the batch resumes from the last recorded prefix")
        report.ledger_failed = True
        return set()

    def _settle_primaries(
        self,
        primaries: Mapping[ClaimKey, _Message],
        claims: Mapping[ClaimKey, Claim],
        jobs: Mapping[ClaimKey, PublishJob],
        recorded: set[str],
        report: BatchReport,
    ) -> tuple[dict[ClaimKey, ClaimStatus], list[_Message]]:
        """Decide each primary message; return the fate its exact copies in the batch follow, and
        the messages to hand back (decided by :meth:`_hand_back`).

        A claimed submission is acknowledged only if its outcome row was written by this invocation:
        when another worker took the lease over meanwhile (this one paused past its lease), the
        submission is that worker's to finish, so here it is reported as a failure.
        """
        fates: dict[ClaimKey, ClaimStatus] = {}
        continuing: list[_Message] = []
        for key, message in primaries.items():
            status = claims[key].status
            if status is ClaimStatus.CLAIMED:
                job = jobs[key]
                if key[0] not in recorded and not report.ledger_failed:
                    report.leases_lost += 1
                if job.done and key[0] in recorded:
                    report.submissions_completed += 1
                    fates[key] = ClaimStatus.COMPLETED
                elif key[0] in recorded and job.sent > 0 and not job.given_up:
                    continuing.append(message)  # stopped by the budget with its progress recorded
                else:
                    report.failed_message_ids.append(message.message_id)
                    fates[key] = ClaimStatus.BUSY
            elif status is ClaimStatus.COMPLETED:
                report.duplicates_suppressed += 1
                fates[key] = ClaimStatus.COMPLETED
            elif status is ClaimStatus.CONFLICT:
                _reject(report, message.message_id, Reason.CONFLICTING_DUPLICATE, "content", key[0])
                fates[key] = ClaimStatus.CONFLICT
            else:
                report.busy += 1
                report.failed_message_ids.append(message.message_id)
                fates[key] = ClaimStatus.BUSY
        return fates, continuing

    def _hand_back(
        self,
        continuing: Sequence[_Message],
        fates: dict[ClaimKey, ClaimStatus],
        report: BatchReport,
        deadline: Deadline,
    ) -> None:
        """Send a copy of each message that made progress back to the queue and acknowledge it, so a
        long submission never spends receives towards the dead-letter queue while it moves forward.
        Without a hand-back, with too little time left for the call, or when SQS does not take a
        copy, the message is reported as a failure instead (and is redelivered as usual)."""
        if not continuing:
            return
        slack = response_slack_seconds(self.settings.publish.safety_margin_ms)
        taken: set[str] = set()
        if self.handback is not None and deadline.remaining() - slack >= HANDBACK_CALL_TIMEOUT_MS / 1000:
            taken, errors = self.handback.send([Copy(message.message_id, message.body) for message in continuing])
            if errors:
                logger.warning("messages not handed back; they will be redelivered", extra={"errors": errors})
        for message in continuing:
            if message.message_id in taken:
                report.handed_back += 1
                fates[message.key] = ClaimStatus.COMPLETED
            else:
                report.failed_message_ids.append(message.message_id)
                fates[message.key] = ClaimStatus.BUSY

    def _settle_followers(
        self, followers: Sequence[_Message], fates: Mapping[ClaimKey, ClaimStatus], report: BatchReport
    ) -> None:
        """Exact copies of a submission inside the batch follow their first copy's fate."""
        for message in followers:
            fate = fates[message.key]
            if fate is ClaimStatus.COMPLETED:
                report.duplicates_suppressed += 1
            elif fate is ClaimStatus.CONFLICT:
                _reject(report, message.message_id, Reason.CONFLICTING_DUPLICATE, "content", message.key[0])
            else:
                report.failed_message_ids.append(message.message_id)


def _claim_request(submission: Submission) -> ClaimRequest:
    return ClaimRequest(submission.submission_id, submission.device_id, submission.digest, len(submission.events))


def _reject(
    report: BatchReport, message_id: str, reason: Reason, detail: str, submission_id: str | None = None
) -> None:
    report.rejected[reason.value] += 1
    logger.warning(
        "submission rejected",
        extra={
            "message_id": message_id,
            "reason": reason.value,
            "field": detail,
            "submission_id": submission_id,
        },
    )
