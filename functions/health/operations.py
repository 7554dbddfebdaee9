"""What the health function answers when it is invoked directly, for the operators' tool.

The ledger lives in isolated subnets with no public endpoint, so the operators' tool (``python -m
ops``) asks the health function, which already runs next to it: a direct invocation (Lambda
``Invoke``, which IAM authorises with ``lambda:InvokeFunction`` on this one function) whose event names
an operation::

    {"operation": "health"}
        -> {"operation": "health", "status": "ok|degraded|failing", "checks": {...}, "time": "..."}
    {"operation": "submission", "submission_id": "<uuid>"}
        -> {"operation": "submission", "submission_id": "<uuid>", "found": true, "ledger": {...}}

A failure is an answer too, never an exception: ``{"operation": ..., "error": "<code>", "message":
"..."}`` with the codes of :class:`ErrorCode`.

Reaching this takes a direct invocation. A Function URL request always arrives as an event with a
``requestContext`` (the URL service builds the event; a caller controls only the path, query,
headers and body inside it), and such an event is routed as an HTTP request whatever else it holds,
so no operation is reachable through the URL, even with ``healthUrlAuth=NONE``.

Read-only: one constant ``SELECT`` with the id as a parameter, nothing else.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from health.settings import HealthSettings
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.observability import logger

OPERATION = "operation"
HEALTH = "health"
SUBMISSION = "submission"
OPERATIONS = (HEALTH, SUBMISSION)

_MAX_ID_CHARS = 64

SUBMISSION_SQL = """
SELECT device_id::text, event_count, published_count, completed_at, lease_owner, lease_expires_at,
       first_seen_at, encode(content_digest, 'hex'), now()
FROM submission_ledger
WHERE submission_id = CAST(:submission_id AS uuid)
"""


class ErrorCode(StrEnum):
    """Why an operation has no answer."""

    UNKNOWN_OPERATION = "unknown_operation"
    """The event names no operation this function knows (the answer lists the known ones)."""
    INVALID_SUBMISSION_ID = "invalid_submission_id"
    """``submission_id`` is missing or not a UUID."""
    NOT_CONFIGURED = "not_configured"
    """The function's environment names no ledger (``DATABASE_URL`` or ``DB_*``)."""
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    """The ledger did not answer (the message is the error's class, never its text)."""


def is_direct_invocation(event: object) -> bool:
    """An event that names an operation and is not a Function URL request."""
    return isinstance(event, Mapping) and OPERATION in event and "requestContext" not in event


class SubmissionLookup:
    """Reads one submission's ledger row over a connection of its own, opened on first use."""

    def __init__(self, connections: ConnectionProvider) -> None:
        self._connections = connections

    def find(self, submission_id: str) -> dict[str, Any] | None:
        """The ledger's row for ``submission_id`` (a canonical UUID), or None when it has none."""
        try:
            rows = self._connections.get().run(SUBMISSION_SQL, submission_id=submission_id)
        except Exception:
            self._connections.discard()  # a broken connection must not serve the next lookup
            raise
        if not rows:
            return None
        device, events, published, completed, owner, expires, first_seen, digest, now = rows[0]
        leased = owner is not None and expires is not None and expires > now
        return {
            "device_id": device,
            "event_count": events,
            "published_count": published,
            "state": "completed" if completed else ("in_progress" if leased else "unfinished"),
            "completed_at": _iso(completed),
            "lease_owner": owner,
            "lease_expires_at": _iso(expires),
            "lease_active": leased,
            "first_seen_at": _iso(first_seen),
            "content_sha256": digest,
        }


@cache
def default_lookup() -> SubmissionLookup:
    """The function's lookup from its environment, with the health checks' timeout as socket timeout."""
    settings = dataclasses.replace(
        DatabaseSettings.from_env(), timeout_seconds=HealthSettings.from_env().check_timeout_seconds
    )
    return SubmissionLookup(ConnectionProvider(settings.connect))


def answer(
    event: Mapping[str, Any],
    *,
    health: Callable[[], Mapping[str, Any]],
    lookup: Callable[[], SubmissionLookup] = default_lookup,
) -> dict[str, Any]:
    """Answer one direct invocation. ``health`` gives the health answer's body; ``lookup`` the ledger."""
    operation = event.get(OPERATION)
    if operation == HEALTH:
        return {OPERATION: HEALTH, **health()}
    if operation == SUBMISSION:
        return _submission(event.get("submission_id"), lookup)
    return _error(
        str(operation)[:64],
        ErrorCode.UNKNOWN_OPERATION,
        f"known operations: {', '.join(OPERATIONS)}",
    )


def canonical_uuid(text: object) -> str | None:
    """``text`` as a lower-case canonical UUID, or None when it is not one."""
    if not isinstance(text, str) or len(text) > _MAX_ID_CHARS:
        return None
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def _submission(raw_id: object, lookup: Callable[[], SubmissionLookup]) -> dict[str, Any]:
    submission_id = canonical_uuid(raw_id)
    if submission_id is None:
        return _error(SUBMISSION, ErrorCode.INVALID_SUBMISSION_ID, "submission_id must be a UUID string")
    logger.info("operator lookup", extra={"operation": SUBMISSION, "submission_id": submission_id})
    try:
        row = lookup().find(submission_id)
    except ConfigurationError as error:
        return _error(SUBMISSION, ErrorCode.NOT_CONFIGURED, str(error))
    except Exception as error:  # any ledger failure is an answer the operator can act on, not a crash
        logger.warning("operator lookup failed", extra={"error": type(error).__name__})
        return _error(SUBMISSION, ErrorCode.LEDGER_UNAVAILABLE, type(error).__name__)
    answer: dict[str, Any] = {OPERATION: SUBMISSION, "submission_id": submission_id, "found": row is not None}
    if row is not None:
        answer["ledger"] = row
    return answer


def _error(operation: str, code: ErrorCode, message: str) -> dict[str, Any]:
    return {OPERATION: operation, "error": code.value, "message": message}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
