"""Scheduled retention clean-up: delete ledger rows older than ``LEDGER_RETENTION_DAYS``.

An EventBridge rule invokes it daily. The retention covers a message's whole life (queue, dead-letter
queue, a redrive), so a late copy still finds its row and is suppressed as a duplicate; rows under a
live lease are never deleted.

The rows go in chunks of ``CLEANUP_CHUNK_ROWS``, oldest first, each one statement under the ledger's
statement timeout and within the invocation's own deadline: a chunk starts only while a whole
statement still fits, so a large backlog is worked off over several days' runs instead of timing the
function out. A chunk is never re-sent after a timeout (it may still be running on the server). A
failure is logged at ERROR with a ``CleanupFailures`` metric and raised, so the function's ``Errors``
metric, which an alarm watches, counts it; a run the deadline cut short logs how far it got and emits
``CleanupIncomplete``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from telemetry_adapter.config import ConfigurationError, env_int
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import logger, metrics
from telemetry_adapter.time_budget import RESPONSE_SLACK_MS

DEFAULT_RETENTION_DAYS = 14
DEFAULT_CHUNK_ROWS = 10_000
DEFAULT_BUDGET_MS = 300_000
"""Budget without a Lambda context (a local run): the deployed function's timeout, 5 minutes."""


@dataclass(frozen=True)
class CleanupSettings:
    """What the clean-up reads from its environment."""

    retention_days: int = DEFAULT_RETENTION_DAYS
    """``LEDGER_RETENTION_DAYS``: 1 to 3650."""
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    """``CLEANUP_CHUNK_ROWS``: rows per DELETE statement, 100 to 1,000,000."""
    statement_timeout_ms: int = 10_000
    """``CLEANUP_STATEMENT_TIMEOUT_MS``: the longest wait for one chunk, 1,000 to 60,000. A chunk of the
    default size takes a fraction of a second; the rest is room for a busy database."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CleanupSettings:
        """Read and validate; raise ConfigurationError naming the variable."""
        source = os.environ if env is None else env
        return cls(
            retention_days=env_int(source, "LEDGER_RETENTION_DAYS", cls.retention_days, 1, 3_650),
            chunk_rows=env_int(source, "CLEANUP_CHUNK_ROWS", cls.chunk_rows, 100, 1_000_000),
            statement_timeout_ms=env_int(
                source, "CLEANUP_STATEMENT_TIMEOUT_MS", cls.statement_timeout_ms, 1_000, 60_000
            ),
        )


def retention_days(env: Mapping[str, str] | None = None) -> int:
    """``LEDGER_RETENTION_DAYS`` validated (1 to 3650), or the default."""
    return CleanupSettings.from_env(env).retention_days


def clean_up(ledger: Ledger, settings: CleanupSettings, deadline: Deadline) -> dict[str, Any]:
    """Delete expired rows chunk by chunk while the deadline allows; return (and log) what was done.

    Raises whatever a chunk raised, after logging it and counting it in ``CleanupFailures``.
    """
    slack = RESPONSE_SLACK_MS / 1000

    def budget() -> float:
        return deadline.remaining() - slack

    deleted = chunks = 0
    complete = False
    try:
        while deadline.may_start_work():
            count = ledger.delete_expired_chunk(settings.retention_days, limit=settings.chunk_rows, budget=budget)
            deleted += count
            chunks += 1
            if count < settings.chunk_rows:
                complete = True
                break
        if complete:
            ledger.delete_stale_heartbeats(settings.retention_days, budget=budget)
    except Exception as error:
        metrics.add_metric(name="CleanupFailures", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="CleanupRowsDeleted", unit=MetricUnit.Count, value=deleted)
        logger.exception(
            "ledger clean-up failed", extra={"deleted": deleted, "chunks": chunks, "error": type(error).__name__}
        )
        raise
    result = {"deleted": deleted, "chunks": chunks, "complete": complete, "retention_days": settings.retention_days}
    metrics.add_metric(name="CleanupRowsDeleted", unit=MetricUnit.Count, value=deleted)
    metrics.add_metric(name="CleanupIncomplete", unit=MetricUnit.Count, value=int(not complete))
    if complete:
        logger.info("ledger clean-up done", extra=result)
    else:
        logger.warning("ledger clean-up stopped by its deadline; the next run continues", extra=result)
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge entry point; the event's content is not used."""
    del event
    settings = CleanupSettings.from_env()
    timeout_seconds = settings.statement_timeout_ms / 1000
    database = dataclasses.replace(DatabaseSettings.from_env(), timeout_seconds=timeout_seconds)
    provider = ConnectionProvider(database.connect)
    # A chunk starts only while a whole statement and the answer still fit.
    margin_ms = settings.statement_timeout_ms + RESPONSE_SLACK_MS
    deadline = Deadline.from_context(context, default_ms=DEFAULT_BUDGET_MS, margin_ms=margin_ms)
    try:
        return clean_up(Ledger(provider, statement_timeout_seconds=timeout_seconds), settings, deadline)
    finally:
        provider.discard()


__all__ = ["CleanupSettings", "ConfigurationError", "clean_up", "lambda_handler", "retention_days"]
