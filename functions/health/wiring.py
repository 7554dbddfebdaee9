"""The health function's collaborators, built on first use and reused across invocations.

Every client's own timeouts are about the check timeout and nothing retries, so a thread the runner
gave up on ends soon after instead of piling up in a warm container. Tests build their own
:class:`HealthDependencies` from an explicit environment (PostgreSQL, moto) and pass it to the handler.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING

from health import probes
from health.public import PublicAnswers
from health.settings import HealthSettings
from telemetry_adapter.config import ConfigurationError, Settings
from telemetry_adapter.health_checks import Check, Verdict
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True)
class HealthDependencies:
    """Settings, the shared ledger (None when the database is not configured), the AWS clients, and the
    public URL's reused answers (None when the URL needs IAM auth)."""

    settings: HealthSettings
    ledger: probes.SharedLedger | None
    kinesis: KinesisClient
    sqs: SQSClient
    cloudwatch: CloudWatchClient
    public_answers: PublicAnswers | None = None


def build_dependencies(settings: HealthSettings, env: Mapping[str, str] | None = None) -> HealthDependencies:
    """Clients for the checks, with connect/read timeouts of about the check timeout and no retries."""
    import boto3  # here, not at import: the module stays cheap to load
    from botocore.config import Config

    seconds = max(1, math.ceil(settings.check_timeout_seconds))
    config = Config(connect_timeout=seconds, read_timeout=seconds, retries={"total_max_attempts": 1})
    return HealthDependencies(
        settings=settings,
        ledger=_shared_ledger(settings, env),
        kinesis=boto3.client("kinesis", config=config),
        sqs=boto3.client("sqs", config=config),
        cloudwatch=boto3.client("cloudwatch", config=config),
        public_answers=PublicAnswers() if settings.public_url else None,
    )


@cache
def default_dependencies() -> HealthDependencies:
    """The function's dependencies from its environment, built once per process."""
    return build_dependencies(HealthSettings.from_env())


def build_checks(dependencies: HealthDependencies) -> list[Check]:
    """The health checks, in the order the answer lists them."""
    settings = dependencies.settings
    ledger = dependencies.ledger
    return [
        Check("ledger", partial(probes.ledger_reachable, ledger) if ledger else _missing("DATABASE_URL")),
        Check(
            "stream", _needs(settings.stream_name, "STREAM_NAME", partial(probes.stream_active, dependencies.kinesis))
        ),
        Check("queue", _needs(settings.queue_url, "QUEUE_URL", partial(probes.queue_depth, dependencies.sqs))),
        Check(
            "oldest_message",
            _needs(settings.queue_url, "QUEUE_URL", partial(probes.oldest_message_age, dependencies.cloudwatch)),
            critical=False,
        ),
        Check(
            "dead_letter_queue",
            _needs(settings.dlq_url, "DLQ_URL", partial(probes.dead_letter_depth, dependencies.sqs)),
            critical=False,
        ),
        Check(
            "processor_heartbeat",
            partial(probes.processor_heartbeat, ledger, settings.heartbeat_max_age_seconds)
            if ledger
            else _missing("DATABASE_URL"),
            critical=False,
        ),
        Check(
            "circuit_breaker",
            partial(probes.circuit_breaker, ledger, settings.heartbeat_max_age_seconds)
            if ledger
            else _missing("DATABASE_URL"),
            critical=False,
        ),
    ]


def _shared_ledger(settings: HealthSettings, env: Mapping[str, str] | None) -> probes.SharedLedger | None:
    try:
        database = DatabaseSettings.from_env(env)
    except ConfigurationError as error:
        logger.error("ledger not configured", extra={"error": str(error)})
        return None
    database = dataclasses.replace(database, timeout_seconds=settings.check_timeout_seconds)
    # The connection outlives invocations: replace it after a long idle (a thaw) instead of timing out on it.
    provider = ConnectionProvider(database.connect, max_idle_seconds=Settings.max_idle_seconds)
    ledger = Ledger(provider, statement_timeout_seconds=settings.check_timeout_seconds)
    return probes.SharedLedger(ledger, settings.check_timeout_seconds)


def _needs(value: str | None, variable: str, probe: Callable[[str], Verdict]) -> Callable[[], Verdict]:
    """``probe(value)`` as a zero-argument probe, or a ``not_configured`` one when value is unset."""
    if value is None:
        return _missing(variable)
    return partial(probe, value)


def _missing(variable: str) -> Callable[[], Verdict]:
    return partial(probes.not_configured, variable)
