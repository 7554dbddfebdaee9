"""Scheduled retention clean-up: delete ledger rows older than ``LEDGER_RETENTION_DAYS``.

An EventBridge rule invokes it daily. The retention covers the queue's message retention, so a late
redelivery still finds its row and is suppressed as a duplicate; rows under a live lease are never
deleted. One statement, whatever the number of rows.
"""

from __future__ import annotations

import os
from typing import Any

from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import logger

DEFAULT_RETENTION_DAYS = 14


def retention_days(env: dict[str, str] | None = None) -> int:
    """``LEDGER_RETENTION_DAYS`` validated (1 to 3650), or the default."""
    raw = (os.environ if env is None else env).get("LEDGER_RETENTION_DAYS", "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    if not raw.isdigit() or not 1 <= int(raw) <= 3_650:
        raise ConfigurationError(f"LEDGER_RETENTION_DAYS must be an integer between 1 and 3650, got {raw!r}")
    return int(raw)


def clean_up(ledger: Ledger, days: int) -> dict[str, int]:
    """Delete expired rows; return what was done (logged and returned to the caller)."""
    deleted = ledger.delete_expired(days)
    logger.info("ledger clean-up done", extra={"deleted": deleted, "retention_days": days})
    return {"deleted": deleted, "retention_days": days}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge entry point; the event's content is not used."""
    del event
    provider = ConnectionProvider(DatabaseSettings.from_env().connect)
    try:
        return clean_up(Ledger(provider), retention_days())
    finally:
        provider.discard()
