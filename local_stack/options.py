"""Command-line flags of ``python -m local_stack``; every flag also reads an environment variable.

The environment fallback lets ``make run`` be configured the same way as the deployed function
(``DEVICES=50 make run``), and the flags win over the environment so a command line is explicit.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
    batch_size: int = 10
    batching_window: float = 0.0
    visibility_timeout: int = 30
    function_timeout: float = 5.0
    max_receive_count: int = 5
    drain_timeout: float = 120.0
    health_port: int = 8080
    summary: Path = Path("build/run-summary.json")
    log_file: Path = Path("build/run.log")
    worker: bool = False
    seed: int | None = None


@dataclass(frozen=True)
class _Flag:
    name: str
    env: str
    kind: Callable[[str], Any]
    help: str


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value < 65_536:
        raise argparse.ArgumentTypeError(f"a TCP port (0 = any free port), got {text}")
    return value


FLAGS = (
    _Flag("devices", "DEVICES", _positive_int, "sensors in the fleet, each with a stable device id"),
    _Flag("interval", "INTERVAL", _non_negative, "seconds between two submissions of one device"),
    _Flag("duration", "DURATION", _non_negative, "seconds the fleet sends, then drain and stop (0 = until Ctrl-C)"),
    _Flag("broken-rate", "BROKEN_RATE", _rate, "share of submissions with a known sensor defect or hostile body"),
    _Flag("duplicate-rate", "DUPLICATE_RATE", _rate, "share of submissions a device sends again later"),
    _Flag("kinesis-error-rate", "KINESIS_ERROR_RATE", _rate, "share of Kinesis records failed by FlakyKinesis"),
    _Flag("db-restart-every", "DB_RESTART_EVERY", _non_negative, "seconds between killing the ledger's sessions"),
    _Flag("batch-size", "BATCH_SIZE", _positive_int, "ESM batch size (messages per invocation, up to 10,000)"),
    _Flag("batching-window", "BATCHING_WINDOW", _non_negative, "ESM batching window in seconds"),
    _Flag("visibility-timeout", "VISIBILITY_TIMEOUT", _positive_int, "seconds a received message stays hidden"),
    _Flag("function-timeout", "FUNCTION_TIMEOUT", _non_negative, "seconds each invocation's context allows"),
    _Flag("max-receive-count", "MAX_RECEIVE_COUNT", _positive_int, "receives before SQS moves a message to the DLQ"),
    _Flag("drain-timeout", "DRAIN_TIMEOUT", _non_negative, "seconds to wait for the queue to empty at the end"),
    _Flag("health-port", "HEALTH_PORT", _port, "loopback port of the health endpoint (0 = any free port)"),
    _Flag("summary", "SUMMARY", Path, "where the JSON summary is written"),
    _Flag("log-file", "LOG_FILE", Path, "where the processor's JSON logs and EMF metrics go"),
    _Flag("seed", "SEED", int, "fleet random seed (default: a new one per run, so submission ids never repeat)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``--help`` lists each flag's environment variable and default)."""
    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="Run the telemetry adapter on loopback: moto, PostgreSQL, a sensor fleet, the processor, "
        "a stream consumer and a live view. With --worker, only the poller, against the endpoints "
        "the environment names.",
    )
    defaults = Options()
    for flag in FLAGS:
        attribute = flag.name.replace("-", "_")
        parser.add_argument(
            f"--{flag.name}",
            type=flag.kind,
            default=None,
            help=f"{flag.help} [env {flag.env}, default {getattr(defaults, attribute)}]",
        )
    parser.add_argument(
        "--worker",
        action="store_true",
        default=None,
        help="long-running worker against real endpoints (QUEUE_URL, STREAM_NAME, DATABASE_URL or DB_*) [env WORKER]",
    )
    return parser


def parse_options(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Options:
    """Flags first, then environment variables, then defaults; exits with a usage error if invalid."""
    source = os.environ if env is None else env
    parser = build_parser()
    namespace = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for flag in FLAGS:
        attribute = flag.name.replace("-", "_")
        given = getattr(namespace, attribute)
        if given is None and source.get(flag.env, "").strip():
            try:
                given = flag.kind(source[flag.env].strip())
            except (ValueError, argparse.ArgumentTypeError) as error:
                parser.error(f"environment variable {flag.env}: {error}")
        if given is not None:
            values[attribute] = given
    worker = namespace.worker or source.get("WORKER", "").strip().lower() in ("1", "true", "yes")
    options = Options(**values, worker=worker)
    if options.batch_size > 10_000:
        parser.error("--batch-size is at most 10,000 (the SQS event source limit)")
    if options.function_timeout <= 0:
        parser.error("--function-timeout must be positive")
    if options.visibility_timeout < options.function_timeout:
        parser.error("--visibility-timeout must be at least --function-timeout (AWS advises 6 times)")
    return options
