"""Command-line flags of ``python -m local_stack`` (``make run ARGS='...'``), checked when parsed.

Flags only: no environment variable changes a local run behind the user's back (a shell that
exports ``DATABASE_URL`` or ``SEED`` for something else must not redirect or alter it). The one
exception is worker mode, which is configured by the environment exactly like the deployed function.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from devkit.cli_flags import HelpFormatter, integer, number, port, rate
from local_stack.stack_file import DEFAULT_PATH as DEFAULT_STACK_FILE
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.retry_schedule import (
    MAX_BACKOFF_SECONDS,
    guaranteed_retry_span_seconds,
    receives_for_tolerance,
)

FIXED_AWS_PORT = 4566
FIXED_DB_PORT = 15432
FIXED_HEALTH_PORT = 8081
"""``--fixed-ports``: where ``sam local invoke`` (``events/env.json``) and ``make invoke`` find the stack."""


@dataclass(frozen=True)
class Options:
    """Everything one run is configured with."""

    devices: int = 20
    interval: float = 1.0
    duration: float = 0.0
    broken_rate: float = 0.02
    duplicate_rate: float = 0.05
    kinesis_error_rate: float = 0.0
    db_restart_every: float = 0.0
    ledger_outage: float = 0.0
    """Seconds the ledger is unreachable (``--ledger-outage``); 0: no outage."""
    ledger_outage_at: float = 5.0
    """Seconds after the fleet starts when the outage begins (``--ledger-outage-at``)."""
    batch_size: int = 10
    batching_window: float = 0.0
    visibility_timeout: int = 30
    function_timeout: float = 5.0
    max_receive_count: int | None = None
    """Receives before the DLQ; None: derived from ``outage_tolerance`` as the CDK app derives it."""
    outage_tolerance: int = 60
    """Seconds a message that keeps failing must be retried before the DLQ (``outageToleranceHours``)."""
    retry_base_delay: int = 1
    """The processor's ``RETRY_BASE_DELAY_SECONDS``."""
    retry_max_delay: int = 8
    """The processor's ``RETRY_MAX_DELAY_SECONDS``."""
    breaker_cooldown: int = 5
    """The processor's ``CIRCUIT_BREAKER_COOLDOWN_SECONDS``."""
    drain_timeout: float = 120.0
    aws_port: int = 0
    db_port: int = 0
    health_port: int = 0
    database_url: str | None = None
    """An external ledger given explicitly (``--database-url``); None: the embedded server."""
    summary: Path = Path("build/run-summary.json")
    log_file: Path = Path("build/run.log")
    stack_file: Path = DEFAULT_STACK_FILE
    """Where the run's endpoints are written while it runs, for ``make ops ARGS='--local ...'``."""
    worker: bool = False
    seed: int | None = None
    debug: bool = False
    """On an error the user can fix (a database that cannot be reached, a port taken), the traceback too."""

    @property
    def receives(self) -> int:
        """The queue's ``maxReceiveCount``: as given, or the fewest receives whose backoff covers the
        outage tolerance (:func:`~telemetry_adapter.retry_schedule.receives_for_tolerance`)."""
        if self.max_receive_count is not None:
            return self.max_receive_count
        return receives_for_tolerance(self.outage_tolerance, self.retry_base_delay, self.retry_max_delay)

    def processor_environment(self) -> dict[str, str]:
        """The processor's retry and circuit breaker settings for this run."""
        return {
            "RETRY_BASE_DELAY_SECONDS": str(self.retry_base_delay),
            "RETRY_MAX_DELAY_SECONDS": str(self.retry_max_delay),
            "CIRCUIT_BREAKER_COOLDOWN_SECONDS": str(self.breaker_cooldown),
        }


def _database_url(text: str) -> str:
    try:
        DatabaseSettings.from_url(text)
    except ConfigurationError as error:
        raise argparse.ArgumentTypeError(str(error).replace("DATABASE_URL", "the URL")) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``--help`` shows each flag's range and default)."""
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="make run ARGS='...'  (or python -m local_stack)",
        description="Run the telemetry adapter on loopback: an AWS endpoint (moto), an embedded PostgreSQL, a "
        "sensor fleet, the processor behind an emulated SQS event source, the health endpoint, a stream "
        "consumer and a live view; drain, check and summarise at the end. With --worker, only the poller, "
        "against the queue, stream and database the environment names.",
        formatter_class=HelpFormatter,
    )
    fleet = parser.add_argument_group("fleet and duration")
    fleet.add_argument("--devices", type=integer(1, 10_000), default=defaults.devices, help="sensors in the fleet")
    fleet.add_argument(
        "--interval",
        type=number(0, 3600),
        default=defaults.interval,
        help="seconds between two submissions of a device",
    )
    fleet.add_argument(
        "--duration", type=number(0, 7 * 86_400), default=defaults.duration, help="seconds of traffic; 0 = until Ctrl-C"
    )
    fleet.add_argument(
        "--broken-rate", type=rate(), default=defaults.broken_rate, help="share of defective or hostile submissions"
    )
    fleet.add_argument(
        "--duplicate-rate", type=rate(), default=defaults.duplicate_rate, help="share a device sends again later"
    )
    fleet.add_argument("--seed", type=integer(), default=None, help="fleet random seed [default: new per run]")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--kinesis-error-rate", type=rate(), default=defaults.kinesis_error_rate, help="share of records Kinesis fails"
    )
    faults.add_argument(
        "--db-restart-every",
        type=number(0, 3600),
        default=defaults.db_restart_every,
        help="seconds between terminating the ledger's sessions; 0 = never",
    )
    faults.add_argument(
        "--ledger-outage",
        type=number(0, 86_400),
        default=defaults.ledger_outage,
        help="seconds the ledger is unreachable (connections dropped and refused); 0 = no outage",
    )
    faults.add_argument(
        "--ledger-outage-at",
        type=number(0, 86_400),
        default=defaults.ledger_outage_at,
        help="seconds after the fleet starts when the ledger outage begins",
    )
    retries = parser.add_argument_group("retries and circuit breaker (the processor's settings)")
    retries.add_argument(
        "--retry-base-delay",
        type=integer(1, MAX_BACKOFF_SECONDS),
        default=defaults.retry_base_delay,
        help="a failed message's first backoff, seconds (RETRY_BASE_DELAY_SECONDS)",
    )
    retries.add_argument(
        "--retry-max-delay",
        type=integer(1, MAX_BACKOFF_SECONDS),
        default=defaults.retry_max_delay,
        help="the longest backoff, seconds (RETRY_MAX_DELAY_SECONDS)",
    )
    retries.add_argument(
        "--outage-tolerance",
        type=integer(1, 7 * 86_400),
        default=defaults.outage_tolerance,
        help="seconds a failing message is retried before the DLQ; sizes --max-receive-count",
    )
    retries.add_argument(
        "--breaker-cooldown",
        type=integer(1, 3_600),
        default=defaults.breaker_cooldown,
        help="seconds an open circuit breaker waits before a probe (CIRCUIT_BREAKER_COOLDOWN_SECONDS)",
    )
    esm = parser.add_argument_group("event source and function (as deployed)")
    esm.add_argument("--batch-size", type=integer(1, 10_000), default=defaults.batch_size, help="messages per batch")
    esm.add_argument(
        "--batching-window", type=number(0, 300), default=defaults.batching_window, help="batching window, seconds"
    )
    esm.add_argument(
        "--visibility-timeout", type=integer(1, 43_200), default=defaults.visibility_timeout, help="seconds"
    )
    esm.add_argument("--function-timeout", type=number(1, 900), default=defaults.function_timeout, help="seconds")
    esm.add_argument(
        "--max-receive-count",
        type=integer(1, 1000),
        default=defaults.max_receive_count,
        help="receives before DLQ [default: the fewest whose backoff covers --outage-tolerance]",
    )
    esm.add_argument(
        "--drain-timeout", type=number(0, 3600), default=defaults.drain_timeout, help="seconds to empty the queue"
    )
    ports = parser.add_argument_group("ports and database (loopback only)")
    ports.add_argument(
        "--fixed-ports",
        action="store_true",
        help=f"AWS endpoint on {FIXED_AWS_PORT}, PostgreSQL on {FIXED_DB_PORT}, health on {FIXED_HEALTH_PORT}"
        " (what events/env.json and make invoke expect); the flags below override one each",
    )
    ports.add_argument("--aws-port", type=port(), default=None, help="moto server port [default: 0, any free port]")
    ports.add_argument("--db-port", type=port(), default=None, help="embedded PostgreSQL TCP port [default: 0]")
    ports.add_argument("--health-port", type=port(), default=None, help="health endpoint port [default: 0]")
    ports.add_argument(
        "--database-url",
        type=_database_url,
        default=None,
        help="use this PostgreSQL instead of the embedded one: it is migrated and receives test data "
        "(DATABASE_URL in the environment is never used for that)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--summary", type=Path, default=defaults.summary, help="JSON summary file")
    output.add_argument("--log-file", type=Path, default=defaults.log_file, help="processor logs and EMF metrics")
    output.add_argument(
        "--stack-file",
        type=Path,
        default=defaults.stack_file,
        help="the run's endpoints, written while it runs (make ops ARGS='--local ...' reads it)",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="long-running worker against real endpoints: QUEUE_URL, STREAM_NAME, DATABASE_URL or DB_* and "
        "the AWS settings come from the environment, as for the deployed function",
    )
    parser.add_argument("--debug", action="store_true", help="on an error, print the traceback too")
    return parser


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Parse the flags; exit with a usage error naming the flag when one is out of range."""
    parser = build_parser()
    namespace = vars(parser.parse_args(argv))
    fixed = namespace.pop("fixed_ports")
    embedded = not (namespace["database_url"] or namespace["worker"])  # only then is there a PostgreSQL to expose
    chosen = {"aws_port": FIXED_AWS_PORT, "db_port": FIXED_DB_PORT if embedded else 0, "health_port": FIXED_HEALTH_PORT}
    for name, fixed_port in chosen.items():
        if namespace[name] is None:
            namespace[name] = fixed_port if fixed else 0
    options = replace(Options(), **namespace)
    if options.visibility_timeout < options.function_timeout:
        parser.error("--visibility-timeout must be at least --function-timeout (AWS advises 6 times)")
    problem = retry_problem(options)
    if problem:
        parser.error(problem)
    if options.ledger_outage and options.worker:
        parser.error("--ledger-outage is for a local run: --worker reaches the ledger the environment names")
    if options.worker and options.db_port:
        parser.error("--db-port is for the embedded PostgreSQL, which --worker does not start")
    if options.database_url and options.db_port:
        parser.error("--db-port is for the embedded PostgreSQL; --database-url names another server")
    return options


def retry_problem(options: Options) -> str | None:
    """Why the queue's ``maxReceiveCount`` and the processor's backoff disagree, or None: the same rules
    the CDK app applies at synth time (``infra/settings.py``), so a run is sized as a stack would be."""
    base, cap, tolerance = options.retry_base_delay, options.retry_max_delay, options.outage_tolerance
    if cap < base:
        return f"--retry-max-delay ({cap}) must be at least --retry-base-delay ({base})"
    if options.max_receive_count is None:
        try:
            receives_for_tolerance(tolerance, base, cap)
        except ValueError as error:
            return f"--outage-tolerance ({tolerance}): {error}; raise --retry-max-delay"
        return None
    span = guaranteed_retry_span_seconds(options.max_receive_count, base, cap)
    if span < tolerance:
        return (
            f"--max-receive-count ({options.max_receive_count}) gives a failing message its last try {span} s "
            f"after its first, less than --outage-tolerance ({tolerance} s); leave it out to derive it, or lower "
            "the tolerance"
        )
    return None
