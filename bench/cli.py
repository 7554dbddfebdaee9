"""``python -m bench``: run every case, print the tables, write ``build/bench.json`` and the chart.

Batch cases are interleaved (run 1 of every size and case, then run 2, ...) with the case order
rotated each run, so a noisy neighbour slows all cases alike; figures are medians.
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
from bench.measure import Samples, seconds
from bench.memory import measure_memory
from bench.report import Results, checks, derive, render, to_json, write_json
from bench.stack import Stack, bench_stack
from bench.workload import make_batch

FULL_SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100)
LARGE = 10_000


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
    parser.add_argument("--strict", action="store_true", help="exit 1 when a SPEC target fails")
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

    with bench_stack(database_url) as stack:
        runner = Runner(stack)
        try:
            results = run_batches(runner, stack, sizes, repeats, large_repeats, args.naive_max)
        finally:
            runner.close()
        _log(f"memory: one {memory_messages:,}-message batch in a probe process")
        memory = measure_memory(memory_messages, stack.database_url)
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
    document = to_json(results, found)
    write_json(document, args.json)
    from bench.chart import draw

    draw(results, chart)
    print(render(results, found))
    print(f"\nwrote {args.json} and {chart} in {document['seconds']} s")
    return 1 if args.strict and not document["all_pass"] else 0
