"""``python -m bench``: run every case, print the tables, write ``build/bench.json`` and ``build/bench.png``.

Batch cases are interleaved (run 1 of every size and case, then run 2, ...) with the case order
rotated each run, so a noisy neighbour slows all cases alike; figures are medians.

Two network modes, one after the other on the same database and moto backend: ``loopback`` (no
latency: our own overhead against the I/O floor) and ``modelled`` (an assumed round-trip time on
every PutRecords call, SQL round trip and DynamoDB call, for every case alike: what the comparison
with the Powertools idiom means in AWS). See :mod:`bench.latency` and :mod:`devkit.pgproxy`.

No run writes a tracked file: the chart goes to ``build/`` unless ``--publish`` copies it into the
docs as well.

Exit status: 0 done (with ``--strict``: and every target met), 1 a target missed under ``--strict``, 2 a
usage or configuration error (a ``TEST_DATABASE_URL`` that cannot be reached: one line, the traceback
too with ``--debug``), 129 when the terminal went away (SIGHUP, or a write to stdout or stderr
failed), 130 when stopped by Ctrl-C or SIGTERM. However it ends, the embedded PostgreSQL is stopped
and deleted.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cases import CASES, Runner
from bench.cost import Workload
from bench.latency import NetworkModel
from bench.measure import Samples, seconds
from bench.progress import Progress, Step
from bench.report import Modelled, Results, checks, derive, render, to_json, write_json
from bench.stack import Stack, bench_stack, modelled_network
from bench.workload import make_batch
from devkit.cli_errors import fail, reported
from devkit.cli_flags import RawDescriptionHelpFormatter, with_range
from devkit.terminal import StopSignal, Terminal, stop_signals_raise

FULL_SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100)
LARGE = 10_000
MAX_BATCH = 10_000
"""The largest batch an SQS event source mapping delivers."""
MODELLED_POWERTOOLS_MAX = 1_000
NETWORKS = ("both", "loopback", "modelled")
PUBLISHED_CHART = Path("docs/bench.png")
"""Where ``--publish`` copies the chart: the image the benchmarks page shows."""


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high``, with an error a person can read."""

    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:,} to {high:,}, got {value:,}")
        return value

    parse.__name__ = "whole number"
    return with_range(parse, f"{low:,} to {high:,}")


def number(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number from ``low`` to ``high``, with an error a person can read."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number from {low:g} to {high:g}, got {text!r}") from None
        if not low <= value <= high:  # also rejects nan
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, got {text}")
        return value

    parse.__name__ = "number"
    return with_range(parse, f"{low:g} to {high:g}")


def batch_sizes(text: str) -> list[int]:
    """An argparse type: comma-separated batch sizes, each from 1 to 10,000, without repeats."""
    one = whole_number(1, MAX_BATCH)
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"must list batch sizes, e.g. 10,100,1000; got {text!r}")
    try:
        sizes = [one(part) for part in parts]
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"each batch size {error}") from None
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"lists a batch size twice: {text!r}")
    return sorted(sizes)


def case_names(text: str) -> list[str]:
    """An argparse type: comma-separated case names, each one of :data:`bench.cases.CASES`."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in CASES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"must name cases among {', '.join(CASES)}; got {text!r}")
    return [case for case in CASES if case in names]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="small sizes and few repeats, no 10,000-event case (under a minute)")
    add("--sizes", type=batch_sizes, help="batch sizes, 1 to 10,000 each [default: 10,100,1000,10000; quick 10,100]")
    add("--repeats", type=whole_number(1, 50), help="runs per case below 10,000 messages [default: 5, quick 2]")
    add("--large-repeats", type=whole_number(1, 50), default=3, help="runs per case at 10,000 messages")
    add("--cases", type=case_names, default=list(CASES), help=f"batch cases to time [default: all, {','.join(CASES)}]")
    add("--powertools-max", type=whole_number(1, MAX_BATCH), default=MAX_BATCH, help="largest batch the idiom runs")
    add("--cpu-submissions", type=whole_number(10, 100_000), help="submissions in the CPU case [default: 2,000]")
    add("--cold-repeats", type=whole_number(1, 50), help="fresh interpreters per import [default: 7]")
    add("--memory-messages", type=whole_number(1, MAX_BATCH), help="batch size for peak RSS [default: 10,000]")
    add("--memory-mb", type=whole_number(128, 10_240), default=512, help="Lambda memory for the cost")
    add(
        "--throughput",
        type=number(0.01, 1_000_000),
        default=100.0,
        help="sustained submissions per second over which the fixed monthly prices are spread",
    )
    add("--json", type=Path, default=Path("build/bench.json"), help="where to write the figures")
    add("--chart", type=Path, default=Path("build/bench.png"), help="where to write the chart (PNG)")
    add("--publish", action="store_true", help=f"also copy the chart to {PUBLISHED_CHART} (a tracked file)")
    add("--strict", action="store_true", help="exit 1 when a performance target fails (either mode)")
    add("--network", choices=NETWORKS, default="both", help="which mode(s) to run")
    add("--kinesis-rtt-ms", type=number(0, 1_000), default=10.0, help="modelled wait per PutRecords call")
    add("--sql-rtt-ms", type=number(0, 1_000), default=1.0, help="modelled wait per PostgreSQL round trip")
    add("--dynamodb-rtt-ms", type=number(0, 1_000), default=5.0, help="modelled wait per DynamoDB call")
    add("--modelled-repeats", type=whole_number(1, 50), help="modelled mode: runs per case [default: 3, quick 2]")
    add("--modelled-large-repeats", type=whole_number(1, 50), default=2, help="modelled mode: runs at 10,000")
    add(
        "--modelled-powertools-max",
        type=whole_number(1, MAX_BATCH),
        default=MODELLED_POWERTOOLS_MAX,
        help="modelled mode: largest batch the idiom runs (at 10,000 one run takes minutes)",
    )
    add(
        "--long-events",
        type=whole_number(0, MAX_BATCH),
        help="events of the one-submission case through the emulated queue; skipped when --quick or --sizes "
        "narrows the run, or with 0 [default: 10,000 in the full run]",
    )
    add("--long-put-ms", type=number(0, 1_000), default=30.0, help="wait per PutRecords in that case")
    add("--debug", action="store_true", help="on an error, print the traceback too")
    return parser


@dataclass(frozen=True)
class Plan:
    """What one run will do, in order."""

    sizes: list[int]
    repeats: int
    large_repeats: int
    powertools_max: int
    cases_run: tuple[str, ...] = CASES

    def runs(self, size: int) -> int:
        """Timed runs per case at ``size``."""
        return self.large_repeats if size >= LARGE else self.repeats

    def cases(self, size: int) -> list[str]:
        """The cases that run at ``size``."""
        return [case for case in self.cases_run if case != "powertools" or size <= self.powertools_max]

    def batches(self) -> Iterator[tuple[int, int, str]]:
        """(run, size, case) in execution order: interleaved, the case order rotated each run."""
        rounds = max((self.runs(size) for size in self.sizes), default=0)
        for run in range(rounds):
            for size in self.sizes:
                if run >= self.runs(size):
                    continue
                cases = self.cases(size)
                if not cases:
                    continue
                shift = run % len(cases)
                for case in cases[shift:] + cases[:shift]:
                    yield run, size, case

    def steps(self, mode: str) -> list[Step]:
        """The plan as progress steps (counting passes first, then the timed runs)."""
        counting = [Step(mode, "count", size, 0.5 + size * 0.01) for size in self.sizes]
        timed = [Step(mode, case, size, 0.05 + size * 0.002) for _, size, case in self.batches()]
        return counting + timed


def run_batches(runner: Runner, stack: Stack, plan: Plan, mode: str, progress: Progress) -> Results:
    """Every batch case at every size, interleaved; I/O counted once per size."""
    results = Results(sizes=plan.sizes)
    samples = Samples()
    runner.warm_up(make_batch(10, seed=1))
    for size in plan.sizes:
        started = time.monotonic()
        batch = make_batch(size, seed=2_000_000 + size)
        trips = runner.round_trips(batch, count_idiom="powertools" in plan.cases(size))
        results.per_size[size] = {**trips.row(), "call_slack": runner.publish_concurrency - 1}
        results.workloads[size] = Workload.of(size, (r.size for records in batch.records for r in records))
        progress.finished(
            Step(mode, "count", size, 0), time.monotonic() - started, f"{mode:<8} {size:>6,} messages  counting I/O"
        )
    for run, size, case in plan.batches():
        batch = make_batch(size, seed=run * 1_000_003 + size)
        stack.reset(size)
        action = runner.prepare(case, batch)
        elapsed = seconds(action)
        samples.add(case, size, elapsed)
        detail = f"{mode:<8} run {run + 1}/{plan.runs(size)}  {size:>6,} messages  {case:<18} {elapsed * 1000:10.1f} ms"
        progress.finished(Step(mode, case, size, 0), elapsed, detail)
    for size in plan.sizes:
        row = results.per_size[size]
        for case in CASES:
            median = samples.median(case, size)
            row[f"{case}_ms"] = None if median is None else median * 1000
        row["runs"] = samples.count("handler", size)
    return results


def run_mode(stack: Stack, plan: Plan, mode: str, progress: Progress) -> Results:
    """Every batch case against ``stack``, with a runner (and the handler's pipeline) built for it."""
    runner = Runner(stack)
    try:
        return run_batches(runner, stack, plan, mode, progress)
    finally:
        runner.close()


def run_modelled(
    stack: Stack, model: NetworkModel, plan: Plan, progress: Progress, args: argparse.Namespace
) -> Modelled:
    """The batch cases again behind the modelled network, with what was delayed."""
    started = time.monotonic()
    with modelled_network(stack, model) as slow:
        results = run_mode(slow, plan, "modelled", progress)
        assert slow.network is not None
        delayed = (slow.network.kinesis.calls, slow.network.sql.round_trips, slow.network.dynamodb.calls)
    results.meta = {
        "kinesis_rtt_ms": model.kinesis_rtt_ms,
        "sql_rtt_ms": model.sql_rtt_ms,
        "dynamodb_rtt_ms": model.dynamodb_rtt_ms,
        "note": "assumed round-trip times, applied to every case alike: botocore before-send delay on PutRecords "
        "and on the idiom's DynamoDB calls, and a loopback TCP proxy holding each PostgreSQL answer",
        "repeats": plan.repeats,
        "large_repeats": plan.large_repeats,
        "powertools_max": plan.powertools_max,
        "putrecords_calls_delayed": delayed[0],
        "sql_round_trips_delayed": delayed[1],
        "dynamodb_calls_delayed": delayed[2],
        "seconds": round(time.monotonic() - started, 1),
    }
    derive(results, args.memory_mb, args.throughput)
    found = checks(results, scalars=False)
    return Modelled(results, found, model.kinesis_rtt_ms, model.sql_rtt_ms, model.dynamodb_rtt_ms)


@dataclass(frozen=True)
class Settings:
    """The parsed command line with the quick-mode defaults filled in."""

    loopback: Plan
    modelled: Plan
    memory_messages: int
    cpu_submissions: int
    cpu_repeats: int
    cold_repeats: int
    long_events: int


def settle(args: argparse.Namespace) -> Settings:
    """Fill in what the flags left to ``--quick`` or the full run."""
    quick = args.quick
    sizes = args.sizes or list(QUICK_SIZES if quick else FULL_SIZES)
    repeats = args.repeats or (2 if quick else 5)
    modelled_repeats = args.modelled_repeats or (2 if quick else 3)
    return Settings(
        loopback=Plan(sizes, repeats, args.large_repeats, args.powertools_max, tuple(args.cases)),
        modelled=Plan(
            sizes, modelled_repeats, args.modelled_large_repeats, args.modelled_powertools_max, tuple(args.cases)
        ),
        memory_messages=args.memory_messages or (1_000 if quick else 10_000),
        cpu_submissions=args.cpu_submissions or (300 if quick else 2_000),
        cpu_repeats=3 if quick else 7,
        cold_repeats=args.cold_repeats or (3 if quick else 7),
        long_events=args.long_events if args.long_events is not None else (0 if quick or args.sizes else 10_000),
    )


def _plan_steps(settings: Settings, args: argparse.Namespace) -> list[Step]:
    steps: list[Step] = []
    if args.network != "modelled":
        steps += settings.loopback.steps("loopback")
    steps.append(Step("single", "memory", 0, 20.0))
    if settings.long_events:
        guess = settings.long_events * (args.long_put_ms / 1000 + 0.002) * 1.25 + 60
        steps.append(Step("single", "long submission", 0, guess))
    if args.network != "loopback":
        steps += settings.modelled.steps("modelled")
    steps.append(Step("single", "cpu", 0, 5.0 + settings.cpu_submissions * 0.005))
    steps.append(Step("single", "cold start", 0, settings.cold_repeats * 3.0))
    return steps


def _timed(progress: Progress, step: Step, label: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    value = action()
    progress.finished(step, time.monotonic() - started, label)
    return value


def main(argv: list[str] | None = None, *, database_url: str | None = None) -> int:
    """Run the benchmark (on ``database_url`` when given, see :func:`bench_stack`); return the exit status."""
    args = _parser().parse_args(argv)
    try:
        with stop_signals_raise():
            return reported("bench", lambda: _run(args, database_url), debug=args.debug)
    except StopSignal as stop:
        return fail("bench", f"stopped ({stop})", stop.status)
    except KeyboardInterrupt:
        return fail("bench", "stopped (Ctrl-C)", StopSignal(signal.SIGINT).status)


def _hung_up() -> None:
    """The terminal went away: stop as on SIGHUP (raised where the bench is, so it cleans up)."""
    raise StopSignal(signal.SIGHUP)


def _run(args: argparse.Namespace, database_url: str | None) -> int:
    out = Terminal(sys.stdout, on_lost=_hung_up)
    messages = Terminal(sys.stderr, on_lost=_hung_up)
    settings = settle(args)
    started = time.monotonic()
    plan = _plan_steps(settings, args)

    def progress_line(line: str) -> None:
        messages.write(line + "\n")

    progress = Progress(plan, log=progress_line)
    step = {(s.mode, s.case): s for s in plan if s.mode == "single"}

    from bench.cold_start import measure_cold_start
    from bench.cpu import measure_cpu
    from bench.long_submission import run_long_submission
    from bench.memory import measure_memory

    modelled: Modelled | None = None
    long_run = None
    with bench_stack(database_url) as stack:
        results = Results(sizes=[])
        if args.network != "modelled":
            results = run_mode(stack, settings.loopback, "loopback", progress)
        memory = _timed(
            progress,
            step["single", "memory"],
            f"peak memory of one {settings.memory_messages:,}-message batch in a probe process",
            lambda: measure_memory(settings.memory_messages, stack.database_url),
        )
        if settings.long_events:
            long_run = _timed(
                progress,
                step["single", "long submission"],
                f"one {settings.long_events:,}-event submission through the emulated queue",
                lambda: run_long_submission(stack, events=settings.long_events, put_records_ms=args.long_put_ms),
            )
        if args.network != "loopback":
            model = NetworkModel(args.kinesis_rtt_ms, args.sql_rtt_ms, args.dynamodb_rtt_ms)
            modelled = run_modelled(stack, model, settings.modelled, progress, args)
    cpu = _timed(
        progress,
        step["single", "cpu"],
        "cpu: decode, validate, build against bare base64 + JSON",
        lambda: measure_cpu(settings.cpu_submissions, settings.cpu_repeats),
    )
    cold = _timed(
        progress,
        step["single", "cold start"],
        "cold start: fresh interpreters",
        lambda: measure_cold_start(settings.cold_repeats),
    )

    results.scalars = {
        "cpu_ratio": cpu.ratio,
        "cpu_us_per_submission": cpu.ours_us,
        "bare_us_per_submission": cpu.bare_us,
        "cold_start_ratio": cold.ratio,
        "handler_import_ms": cold.handler_s * 1000,
        "boto3_import_ms": cold.boto3_s * 1000,
        "peak_rss_mib": memory.peak_rss_mib,
        "rss_before_batch_mib": memory.before_batch_rss_mib,
        "memory_messages": memory.messages,
        "long_submission": None if long_run is None else long_run.row(),
    }
    results.meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "repeats": settings.loopback.repeats,
        "large_repeats": settings.loopback.large_repeats,
        "powertools_max": settings.loopback.powertools_max,
        "seconds": round(time.monotonic() - started, 1),
    }
    derive(results, args.memory_mb, args.throughput)
    found = checks(results, idiom_target=False)
    document = to_json(results, found, modelled, memory_mb=args.memory_mb, throughput=args.throughput)
    write_json(document, args.json)
    from bench.chart import draw

    draw(results, args.chart, None if modelled is None else modelled.results)
    out.write(render(results, found, modelled) + "\n")
    written = f"{args.json} and {args.chart}"
    if args.publish:
        PUBLISHED_CHART.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.chart, PUBLISHED_CHART)
        written += f" (published to {PUBLISHED_CHART})"
    out.write(f"\nwrote {written} in {document['seconds']} s\n")
    all_pass = document["all_pass"] and (modelled is None or document["modelled_network"]["all_pass"])
    return 1 if args.strict and not all_pass else 0
