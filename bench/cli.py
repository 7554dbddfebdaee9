"""``python -m bench``: run every case, print the tables, write ``build/bench.json`` and the chart.

Batch cases are interleaved (run 1 of every size and case, then run 2, ...) with the case order
rotated each run, so a noisy neighbour slows all cases alike; figures are medians.

Two network modes, one after the other on the same database and moto backend: ``loopback`` (no
latency: our own overhead against the I/O floor) and ``modelled`` (an assumed round-trip time on
every PutRecords call and every SQL round trip, for every case alike: what the naive comparison
means in AWS). See :mod:`bench.latency` and :mod:`bench.pgproxy`.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.cases import CASES, Runner
from bench.cold_start import measure_cold_start
from bench.cpu import measure_cpu
from bench.latency import NetworkModel
from bench.measure import Samples, seconds
from bench.memory import measure_memory
from bench.report import Modelled, Results, checks, derive, render, to_json, write_json
from bench.stack import Stack, bench_stack, modelled_network
from bench.workload import make_batch

FULL_SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100)
LARGE = 10_000
MODELLED_NAIVE_MAX = 1_000
NETWORKS = ("both", "loopback", "modelled")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (a minute or less)")
    parser.add_argument("--sizes", type=lambda text: [int(x) for x in text.split(",")], help="e.g. 10,100,1000")
    parser.add_argument("--repeats", type=int, help="runs per case below 10,000 messages (default 5, quick 2)")
    parser.add_argument("--large-repeats", type=int, default=3, help="runs per case at 10,000 messages or more")
    parser.add_argument("--naive-max", type=int, default=LARGE, help="largest batch the naive case runs")
    parser.add_argument("--cpu-submissions", type=int, help="submissions in the CPU case (default 2000)")
    parser.add_argument("--cold-repeats", type=int, help="fresh interpreters per import (default 7)")
    parser.add_argument("--memory-messages", type=int, help="batch size for peak RSS (default 10000)")
    parser.add_argument("--memory-mb", type=int, default=512, help="Lambda memory size for the cost estimate")
    parser.add_argument("--json", type=Path, default=Path("build/bench.json"))
    parser.add_argument("--chart", type=Path, help="PNG path (default docs/bench.png, quick: build/bench.png)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a performance target fails (either mode)")
    parser.add_argument("--network", choices=NETWORKS, default="both", help="which mode(s) to run (default both)")
    parser.add_argument("--kinesis-rtt-ms", type=float, default=10.0, help="modelled delay per PutRecords call")
    parser.add_argument("--sql-rtt-ms", type=float, default=1.0, help="modelled delay per PostgreSQL round trip")
    parser.add_argument("--modelled-repeats", type=int, help="modelled mode: runs per case (default 3, quick 2)")
    parser.add_argument("--modelled-large-repeats", type=int, default=2, help="modelled mode: runs at 10,000")
    parser.add_argument(
        "--modelled-naive-max",
        type=int,
        default=MODELLED_NAIVE_MAX,
        help="modelled mode: largest batch the naive case runs (default 1,000: at 10,000 one run takes minutes)",
    )
    return parser


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_batches(
    runner: Runner, stack: Stack, sizes: list[int], repeats: int, large_repeats: int, naive_max: int
) -> Results:
    """Every batch case at every size, interleaved; round trips counted once per size."""
    results = Results(sizes=sizes)
    samples = Samples()
    runner.warm_up(make_batch(10, seed=1))
    for size in sizes:
        trips = runner.round_trips(make_batch(size, seed=2_000_000 + size))
        results.per_size[size] = {
            "events_per_batch": trips.events,
            "ledger_statements": trips.ledger_statements,
            "putrecords_calls": trips.putrecords_calls,
            "putrecords_calls_packing": trips.putrecords_calls_packing,
            "putrecords_calls_lower_bound": trips.putrecords_calls_lower_bound,
            "call_slack": runner.publish_concurrency - 1,
        }
        if trips.putrecords_calls_delayed is not None:
            results.per_size[size]["putrecords_calls_delayed"] = trips.putrecords_calls_delayed
            results.per_size[size]["sql_round_trips_delayed"] = trips.sql_round_trips_delayed
    rounds = max(large_repeats if size >= LARGE else repeats for size in sizes)
    for run in range(rounds):
        for size in sizes:
            if run >= (large_repeats if size >= LARGE else repeats):
                continue
            batch = make_batch(size, seed=run * 1_000_003 + size)
            cases = [case for case in CASES if case != "naive" or size <= naive_max]
            shift = run % len(cases)
            for case in cases[shift:] + cases[:shift]:
                stack.reset(size)
                action = runner.prepare(case, batch)
                elapsed = seconds(action)
                samples.add(case, size, elapsed)
                _log(f"run {run + 1}/{rounds}  {size:>6,} messages  {case:<16} {elapsed * 1000:9.1f} ms")
    for size in sizes:
        row = results.per_size[size]
        for case in CASES:
            median = samples.median(case, size)
            row[f"{case}_ms"] = None if median is None else median * 1000
        row["runs"] = samples.count("handler", size)
    return results


def run_mode(stack: Stack, sizes: list[int], repeats: int, large_repeats: int, naive_max: int) -> Results:
    """Every batch case against ``stack``, with a runner (and the handler's pipeline) built for it."""
    runner = Runner(stack)
    try:
        return run_batches(runner, stack, sizes, repeats, large_repeats, naive_max)
    finally:
        runner.close()


def run_modelled(stack: Stack, model: NetworkModel, sizes: list[int], args: argparse.Namespace) -> Modelled:
    """The batch cases again behind the modelled network, with what was delayed."""
    started = time.monotonic()
    repeats = args.modelled_repeats or (2 if args.quick else 3)
    with modelled_network(stack, model) as slow:
        _log(f"modelled network: {model.kinesis_rtt_ms:g} ms per PutRecords, {model.sql_rtt_ms:g} ms per SQL trip")
        results = run_mode(slow, sizes, repeats, args.modelled_large_repeats, args.modelled_naive_max)
        assert slow.network is not None
        delayed = (slow.network.kinesis.calls, slow.network.sql.round_trips)
    results.meta = {
        "kinesis_rtt_ms": model.kinesis_rtt_ms,
        "sql_rtt_ms": model.sql_rtt_ms,
        "note": "assumed round-trip times, applied to every case alike: botocore before-send delay on PutRecords, "
        "and a loopback TCP proxy holding each PostgreSQL answer (pg8000 makes 3 round trips per statement)",
        "repeats": repeats,
        "large_repeats": args.modelled_large_repeats,
        "naive_max": args.modelled_naive_max,
        "putrecords_calls_delayed": delayed[0],
        "sql_round_trips_delayed": delayed[1],
        "seconds": round(time.monotonic() - started, 1),
    }
    derive(results, args.memory_mb)
    return Modelled(results, checks(results, scalars=False), model.kinesis_rtt_ms, model.sql_rtt_ms)


def main(argv: list[str] | None = None, *, database_url: str | None = None) -> int:
    """Run the benchmark (on ``database_url`` when given, see :func:`bench_stack`); return the exit status."""
    args = _parser().parse_args(argv)
    quick = args.quick
    sizes = args.sizes or list(QUICK_SIZES if quick else FULL_SIZES)
    repeats = args.repeats or (2 if quick else 5)
    large_repeats = args.large_repeats
    memory_messages = args.memory_messages or (1_000 if quick else 10_000)
    chart = args.chart or Path("build/bench.png" if quick else "docs/bench.png")
    started = time.monotonic()

    modelled: Modelled | None = None
    with bench_stack(database_url) as stack:
        results = Results(sizes=[])
        if args.network != "modelled":
            _log("loopback: no network latency")
            results = run_mode(stack, sizes, repeats, large_repeats, args.naive_max)
        _log(f"memory: one {memory_messages:,}-message batch in a probe process")
        memory = measure_memory(memory_messages, stack.database_url)
        if args.network != "loopback":
            model = NetworkModel(kinesis_rtt_ms=args.kinesis_rtt_ms, sql_rtt_ms=args.sql_rtt_ms)
            modelled = run_modelled(stack, model, sizes, args)
    _log("cpu: decode, validate, build against bare base64 + JSON")
    cpu = measure_cpu(args.cpu_submissions or (300 if quick else 2_000), 3 if quick else 7)
    _log("cold start: fresh interpreters")
    cold = measure_cold_start(args.cold_repeats or (3 if quick else 7))

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
    }
    results.meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "repeats": repeats,
        "large_repeats": large_repeats,
        "naive_max": args.naive_max,
        "memory_mb_for_cost": args.memory_mb,
        "seconds": round(time.monotonic() - started, 1),
    }
    derive(results, args.memory_mb)
    found = checks(results)
    document = to_json(results, found, modelled)
    write_json(document, args.json)
    from bench.chart import draw

    draw(results, chart, None if modelled is None else modelled.results)
    print(render(results, found, modelled))
    print(f"\nwrote {args.json} and {chart} in {document['seconds']} s")
    all_pass = document["all_pass"] and (modelled is None or document["modelled_network"]["all_pass"])
    return 1 if args.strict and not all_pass else 0
