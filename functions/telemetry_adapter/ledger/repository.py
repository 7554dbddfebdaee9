"""The ledger's statements. A batch costs two round trips whatever its size: one claims every
submission of the batch (arrays through ``unnest``), one records the outcome.

Both statements are idempotent for their owner, so :meth:`Ledger._run` may safely re-send one on a
fresh connection when the old connection died, even if the first attempt had committed: a re-send
writes nothing new and never answers so that a message is decided wrongly (see the notes after each
statement).

Every statement waits at most the statement timeout, and less when its caller's budget (the time the
invocation can still give it) is shorter: reconnecting and sending share that allowance, and a
statement or a reconnect the budget cannot hold is not attempted at all (:class:`BudgetExhausted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from telemetry_adapter.ledger.connection import ConnectionProvider, is_connection_failure, statement_time_limit
from telemetry_adapter.time_budget import DEFAULT_STATEMENT_TIMEOUT_MS, RECONNECT_FLOOR_MS, STATEMENT_FLOOR_MS

Budget: TypeAlias = Callable[[], float]
"""Seconds a statement may still take, reconnecting included (asked again before every attempt)."""


class BudgetExhausted(TimeoutError):
    """Too little time was left to send a statement (or to reconnect for it), so it was not sent."""


class ClaimStatus(StrEnum):
    """What the ledger says about a submission offered for publishing."""

    CLAIMED = "claimed"
    """New, or unfinished with an expired (or our own) lease: ours to publish, from ``published``."""
    COMPLETED = "completed"
    """Already fully published: a duplicate to acknowledge and suppress."""
    CONFLICT = "conflict"
    """The id was seen with different content: drop as ``conflicting_duplicate``."""
    BUSY = "busy"
    """Another live worker holds the lease: retry later (SQS redelivery)."""


ClaimKey: TypeAlias = tuple[str, bytes]
"""``(submission_id, content digest)``. Copies of one id with different content are claimed as
separate keys, so the ledger (never another copy in the same batch) decides which content is the one."""


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """A validated submission offered to the ledger."""

    submission_id: str
    device_id: str
    digest: bytes
    event_count: int

    @property
    def key(self) -> ClaimKey:
        """The submission id and content digest: what the ledger answers for."""
        return (self.submission_id, self.digest)


@dataclass(frozen=True, slots=True)
class Claim:
    """The ledger's answer for one submission."""

    status: ClaimStatus
    published: int = 0
    """Length of the already published prefix (events to skip) when claimed."""


_CLAIM_SQL = """
WITH input AS (
    SELECT *
    FROM unnest(CAST(:ids AS uuid[]), CAST(:devices AS uuid[]), CAST(:digests AS bytea[]),
                CAST(:counts AS integer[])) AS t(submission_id, device_id, content_digest, event_count)
),
inserted AS (
    INSERT INTO submission_ledger AS l
        (submission_id, device_id, content_digest, event_count, lease_owner, lease_expires_at)
    SELECT submission_id, device_id, content_digest, event_count,
           :owner, now() + make_interval(secs => :lease_seconds)
    FROM input
    ON CONFLICT (submission_id) DO NOTHING
    RETURNING l.submission_id, l.content_digest
),
taken AS (
    UPDATE submission_ledger AS l
    SET lease_owner = :owner, lease_expires_at = now() + make_interval(secs => :lease_seconds)
    FROM input AS i
    WHERE l.submission_id = i.submission_id
      AND l.content_digest = i.content_digest
      AND l.completed_at IS NULL
      AND (l.lease_owner IS NULL OR l.lease_expires_at <= now() OR l.lease_owner = :owner)
    RETURNING l.submission_id, l.content_digest, l.published_count
)
SELECT i.submission_id::text, i.content_digest,
       CASE
           WHEN ins.submission_id IS NOT NULL OR t.submission_id IS NOT NULL THEN 'claimed'
           WHEN e.submission_id IS NULL THEN 'busy'
           WHEN e.lease_owner = :owner THEN 'busy'
           WHEN e.content_digest <> i.content_digest THEN 'conflict'
           WHEN e.completed_at IS NOT NULL THEN 'completed'
           ELSE 'busy'
       END,
       COALESCE(t.published_count, 0)
FROM input AS i
LEFT JOIN inserted AS ins USING (submission_id, content_digest)
LEFT JOIN taken AS t USING (submission_id, content_digest)
LEFT JOIN submission_ledger AS e ON e.submission_id = i.submission_id
"""
# Rows inserted after this statement's snapshot are invisible to it ("e" is NULL): those another
# worker inserted (the INSERT waited for that worker and skipped them) and, for a second content of
# one id in the same batch, the row this very statement inserted for the first content. Both are
# reported busy and retried later, when the ledger can tell which content it holds.
#
# A claim re-sent after its answer was lost (see ``Ledger._run``) sees what its first attempt wrote:
# the row it inserted or took for the batch's first content is this owner's, and is claimed again by
# "taken" (same digest, ``lease_owner = :owner``). A second content of that id meets the same row, now
# visible: it must stay busy, as the first attempt answered, not become a conflict with a copy of its
# own batch (guarantee 5). Owners are unique per invocation, so a row this owner holds that "taken" did
# not match can only be this batch's own other content. On a re-send this also turns a conflict the
# first attempt saw (the ledger held the first content before this batch) into busy: the copy is
# redelivered and then dropped as a conflict, later but never wrongly.

_OUTCOME_SQL = """
WITH progress AS (
    SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:published AS integer[])) AS p(submission_id, published)
),
updated AS (
    UPDATE submission_ledger AS l
    SET published_count = GREATEST(l.published_count, p.published),
        completed_at = CASE WHEN GREATEST(l.published_count, p.published) >= l.event_count
                            THEN now() END,
        lease_owner = NULL,
        lease_expires_at = NULL
    FROM progress AS p
    WHERE l.submission_id = p.submission_id AND l.lease_owner = :owner
    RETURNING l.submission_id
),
already AS (
    SELECT l.submission_id
    FROM submission_ledger AS l JOIN progress AS p USING (submission_id)
    WHERE l.lease_owner IS NULL AND l.published_count >= p.published
),
heartbeat AS (
    INSERT INTO processor_heartbeat (worker_id, last_batch_at, last_batch_size, circuit_breaker)
    VALUES (:worker, now(), :batch_size, :breaker)
    ON CONFLICT (worker_id) DO UPDATE
        SET last_batch_at = excluded.last_batch_at, last_batch_size = excluded.last_batch_size,
            circuit_breaker = excluded.circuit_breaker
)
SELECT submission_id::text FROM updated
UNION
SELECT submission_id::text FROM already
"""
# "already" makes the outcome safe to re-send (``Ledger._run`` does so on a new connection when the
# old one died, and the first attempt may have committed with only its answer lost): the re-send finds
# the leases it released and writes nothing, but still reports those rows, whose recorded prefix
# covers the progress it was asked to record. Without it the batch's fully published messages would
# be reported as lease_lost and redelivered. Reporting a row means the caller may acknowledge its
# message (finished: every event is in Kinesis and the row is completed; stopped by the budget: its
# copy is handed back and resumes at the recorded prefix, which already holds this progress), and that
# is safe for any row nobody holds whose prefix covers it, whoever released it: no worker is publishing
# it, and nothing this owner published goes unrecorded. Fencing stands: a row another worker holds
# ("lease_owner" neither NULL nor this owner) is never reported, nor one whose recorded prefix is short
# of this owner's progress (this owner no longer holds it, so it writes nothing there). "already" reads
# the statement's snapshot; a row another worker claims meanwhile is still one whose prefix covers this
# progress, so its message is acknowledged only with every event of that prefix in the stream.


_BREAKER_STATES_SQL = """
SELECT COALESCE(circuit_breaker, 'unknown'), count(*)::integer
FROM processor_heartbeat
WHERE last_batch_at >= now() - make_interval(secs => :max_age)
GROUP BY 1
"""

_DELETE_EXPIRED_SQL = """
WITH doomed AS (
    SELECT submission_id
    FROM submission_ledger
    WHERE first_seen_at < now() - make_interval(days => :days)
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY first_seen_at
    LIMIT :chunk
    FOR UPDATE SKIP LOCKED
),
deleted AS (
    DELETE FROM submission_ledger AS l USING doomed AS d WHERE l.submission_id = d.submission_id
    RETURNING 1
)
SELECT count(*) FROM deleted
"""
# One bounded chunk, oldest first (the first_seen_at index finds them), skipping rows another session
# holds: a chunk's cost does not grow with the backlog, so it fits a statement timeout whatever the
# table holds, and an earlier chunk still running on the server (its client gone after a timeout)
# only makes the next one skip its rows.

_DELETE_STALE_HEARTBEATS_SQL = """
WITH deleted AS (
    DELETE FROM processor_heartbeat WHERE last_batch_at < now() - make_interval(days => :days) RETURNING 1
)
SELECT count(*) FROM deleted
"""


LEDGER_TABLES = ("processor_heartbeat", "submission_ledger")
"""The tables the processor reads and writes (created by the migrations)."""

_MISSING_TABLES_SQL = """
SELECT t FROM unnest(CAST(:tables AS text[])) AS t WHERE to_regclass(t) IS NULL ORDER BY t
"""


class Ledger:
    """Data access for the submission ledger over one reusable pg8000 connection."""

    def __init__(
        self,
        connections: ConnectionProvider,
        *,
        on_statement: Callable[[str, float], None] | None = None,
        statement_timeout_seconds: float = DEFAULT_STATEMENT_TIMEOUT_MS / 1000,
    ) -> None:
        self._connections = connections
        self._on_statement = on_statement
        self._statement_timeout = statement_timeout_seconds
        self.statements = 0
        """Statements sent since creation (round trips; tests and benchmarks read it)."""

    def claim(
        self,
        requests: Sequence[ClaimRequest],
        *,
        owner: str,
        lease_seconds: float,
        budget: Budget | None = None,
    ) -> dict[ClaimKey, Claim]:
        """Claim a batch of submissions in one statement; return the answer for each (id, digest).

        Two contents of one id are two keys: the content the ledger already holds is claimed (or found
        completed), the other is a conflict; when the ledger holds neither, one is claimed and the
        other is busy, so no copy is ever decided against another copy of the same batch.
        """
        # One canonical order for every batch: two workers claiming the same new ids take their row
        # locks in the same order, so they queue behind each other instead of deadlocking. The sort
        # is stable: of two new contents of one id, the batch's first is inserted (and claimed).
        requests = sorted({request.key: request for request in requests}.values(), key=lambda r: r.submission_id)
        if not requests:
            return {}
        rows = self._run(
            "claim",
            _CLAIM_SQL,
            ids=[request.submission_id for request in requests],
            devices=[request.device_id for request in requests],
            digests=[request.digest for request in requests],
            counts=[request.event_count for request in requests],
            owner=owner,
            lease_seconds=float(lease_seconds),
            budget=budget,
        )
        return {(row[0], bytes(row[1])): Claim(ClaimStatus(row[2]), row[3]) for row in rows}

    def record_outcome(
        self,
        published: Mapping[str, int],
        *,
        owner: str,
        worker: str,
        batch_size: int,
        breaker: str = "closed",
        budget: Budget | None = None,
    ) -> set[str]:
        """Record each claimed submission's published prefix and release its lease, in one statement.

        Also writes this worker's heartbeat, with its circuit breaker's state. Returns the ids whose
        rows hold this progress: those this owner wrote, and those nobody holds whose recorded prefix
        already covers it (what this very statement wrote when it is re-sent after a lost answer; see
        ``_OUTCOME_SQL``). A row whose lease another worker took over meanwhile is left alone and not
        returned: its submission is that worker's to finish and acknowledge (fencing).
        """
        ordered = sorted(published.items())  # the claim's lock order (see ``claim``)
        rows = self._run(
            "outcome",
            _OUTCOME_SQL,
            ids=[submission_id for submission_id, _ in ordered],
            published=[count for _, count in ordered],
            owner=owner,
            worker=worker,
            batch_size=batch_size,
            breaker=breaker,
            budget=budget,
        )
        return {row[0] for row in rows}

    def record_heartbeat(
        self, *, worker: str, batch_size: int, breaker: str = "closed", budget: Budget | None = None
    ) -> None:
        """Write this worker's heartbeat alone (a batch with nothing to claim, or one its open circuit
        breaker refused), in one statement."""
        self.record_outcome({}, owner="", worker=worker, batch_size=batch_size, breaker=breaker, budget=budget)

    def delete_expired_chunk(self, retention_days: int, *, limit: int, budget: Budget | None = None) -> int:
        """Delete at most ``limit`` rows first seen more than ``retention_days`` ago (never one under a
        live lease); return how many. Never re-sent: after a timeout the first one may still be running
        on the server, so the caller decides what comes next."""
        rows = self._run("cleanup", _DELETE_EXPIRED_SQL, days=retention_days, chunk=limit, budget=budget, resend=False)
        return int(rows[0][0])

    def delete_stale_heartbeats(self, retention_days: int, *, budget: Budget | None = None) -> int:
        """Delete the heartbeats of processors silent for more than ``retention_days``; return how many."""
        rows = self._run(
            "cleanup_heartbeats", _DELETE_STALE_HEARTBEATS_SQL, days=retention_days, budget=budget, resend=False
        )
        return int(rows[0][0])

    def ping(self) -> None:
        """A trivial query: is the ledger reachable?"""
        self._run("ping", "SELECT 1")

    def missing_tables(self) -> list[str]:
        """The ledger's tables this database does not have (none once the migrations ran), by name."""
        rows = self._run("schema", _MISSING_TABLES_SQL, tables=list(LEDGER_TABLES))
        return [str(row[0]) for row in rows]

    def last_heartbeat_age_seconds(self) -> float | None:
        """Seconds since any processor last recorded a batch, or None if none ever did."""
        rows = self._run(
            "heartbeat",
            "SELECT EXTRACT(EPOCH FROM now() - max(last_batch_at))::float8 FROM processor_heartbeat",
        )
        value = rows[0][0]
        return None if value is None else float(value)

    def circuit_breaker_states(self, max_age_seconds: float) -> dict[str, int]:
        """How many processors that recorded a batch in the last ``max_age_seconds`` last reported each
        circuit breaker state (``unknown``: a heartbeat written by code that predates the breaker)."""
        rows = self._run("breaker", _BREAKER_STATES_SQL, max_age=float(max_age_seconds))
        return {str(row[0]): int(row[1]) for row in rows}

    def close(self) -> None:
        """Close the connection (a new one is opened if the ledger is used again)."""
        self._connections.discard()

    def statement_allowance(self, budget: Budget | None, *, connecting: bool) -> float:
        """Seconds the next statement may take, connecting first when ``connecting``: the statement
        timeout, or the budget when that is shorter. Raises BudgetExhausted when that is too little
        to be worth trying (less than the floor for a statement, or for a reconnect and a statement)."""
        allowance = self._statement_timeout if budget is None else min(self._statement_timeout, budget())
        floor = (RECONNECT_FLOOR_MS if connecting else STATEMENT_FLOOR_MS) / 1000
        if allowance < floor:
            action = "reconnect for" if connecting else "send"
            raise BudgetExhausted(f"{allowance:.3f} s left: too little to {action} a ledger statement")
        return allowance

    def _run(
        self, name: str, sql: str, *, budget: Budget | None = None, resend: bool = True, **params: Any
    ) -> list[list[Any]]:
        """Run one statement within its allowance, on the wall clock (a statement still unanswered when
        it runs out is cut with its connection: :class:`StatementTimedOut`); on a dead connection,
        reconnect once and re-send it (the statements are idempotent) when ``resend`` and the budget can
        hold a reconnect.

        Only a connection failure costs the connection: after any other error (a constraint, a
        deadlock) the session is back at ready-for-query and stays in use.
        """
        failure: BaseException | None = None
        for attempt in (1, 2):
            try:
                allowance = self.statement_allowance(budget, connecting=not self._connections.ready)
            except BudgetExhausted as exhausted:
                if failure is None:
                    raise
                raise failure from exhausted  # the reconnect was skipped: the failure stands
            started = time.perf_counter()
            try:
                connection = self._connections.get(timeout_seconds=allowance)
            except Exception as error:
                failure = self._retryable(error, retry=attempt == 1 and resend)
                continue
            # The connect had its own allowance; the statement gets a fresh one, bounded by what the
            # invocation has left. Charging the connect's time to the statement would turn a slow
            # reconnect with a minute still left into a deadline stop (the batch's progress unrecorded,
            # its events re-sent). Only when the invocation itself has too little left is the statement
            # not sent: cut while it may still commit, a claim would hold its rows under a lease nobody
            # acts on. Not sent, nothing happened; the connection stays for the next.
            left = self._statement_timeout if budget is None else min(self._statement_timeout, budget())
            if left < STATEMENT_FLOOR_MS / 1000:
                too_late = BudgetExhausted(f"{left:.3f} s left after connecting: too little to send a statement")
                if failure is None:
                    raise too_late
                raise failure from too_late
            try:
                self.statements += 1
                with statement_time_limit(connection, left) as limit:
                    rows = connection.run(sql, **params)
                if limit.cut:  # answered as the limit passed: the statement stands, the connection does not
                    self._connections.discard()
            except Exception as error:
                failure = self._retryable(error, retry=attempt == 1 and resend)
                continue
            if self._on_statement is not None:
                self._on_statement(name, time.perf_counter() - started)
            return rows or []
        raise AssertionError("unreachable")

    def _retryable(self, error: Exception, *, retry: bool) -> Exception:
        """``error`` back when the statement may be sent again on a new connection; otherwise raise it.
        Only a connection failure costs the connection (and earns the one re-send ``retry`` allows)."""
        if not is_connection_failure(error):
            raise error
        self._connections.discard()
        if not retry:
            raise error
        return error
