"""Figures to targets: the performance targets' pass/fail table, the cost estimate, ``build/bench.json``.

The cost estimate uses Lambda's published arm64 price in us-east-1 as of 2025-06 (assumed, not
fetched): $0.0000133334 per GB-second and $0.20 per million requests. It scales the measured
handler duration, which was taken on this machine (not on Lambda's CPU share) with Kinesis on moto,
so read it as an order of magnitude.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICE_GB_SECOND = 0.0000133334
PRICE_PER_MILLION_REQUESTS = 0.20
PRICE_NOTE = "AWS Lambda arm64, us-east-1, as published in 2025-06: $0.0000133334 per GB-s, $0.20 per 1M requests"

FLOOR_RATIO_MAX = 1.25
NAIVE_SPEEDUP_MIN = 5.0
NAIVE_SPEEDUP_SIZE = 1_000
CPU_RATIO_MAX = 2.5
COLD_START_RATIO_MAX = 1.5
PEAK_RSS_MAX_MIB = 256.0
LEDGER_STATEMENTS = 2


@dataclass(frozen=True)
class Check:
    """One figure against its performance target."""

    figure: str
    measured: float | None
    target: str
    passed: bool | None
    """None when the figure was not measured in this run."""

    def row(self) -> dict[str, Any]:
        """The JSON form."""
        return {"figure": self.figure, "measured": self.measured, "target": self.target, "pass": self.passed}


@dataclass
class Results:
    """Every figure one bench run produced (medians)."""

    sizes: list[int]
    per_size: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Per batch size: ``handler_ms``, ``floor_ms``, ``floor_unordered_ms``, ``naive_ms``, counts."""
    scalars: dict[str, Any] = field(default_factory=dict)
    """``cpu_ratio``, ``cold_start_ratio``, ``peak_rss_mib`` and their raw figures."""
    meta: dict[str, Any] = field(default_factory=dict)


def cost_per_million(handler_ms: float, batch_size: int, memory_mb: int) -> float:
    """Dollars per million submissions for batches of ``batch_size`` taking ``handler_ms`` each."""
    invocations = 1_000_000 / batch_size
    gb_seconds = handler_ms / 1000 * memory_mb / 1024
    return invocations * (gb_seconds * PRICE_GB_SECOND + PRICE_PER_MILLION_REQUESTS / 1_000_000)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def derive(results: Results, memory_mb: int) -> None:
    """Add the ratios and costs that follow from the measured figures."""
    for size, row in results.per_size.items():
        row["handler_floor_ratio"] = _ratio(row.get("handler_ms"), row.get("floor_ms"))
        row["handler_concurrent_floor_ratio"] = _ratio(row.get("handler_concurrent_ms"), row.get("floor_ms"))
        row["ordering_price_ratio"] = _ratio(row.get("floor_ms"), row.get("floor_unordered_ms"))
        row["naive_speedup"] = _ratio(row.get("naive_ms"), row.get("handler_ms"))
        # The most any handler could beat naive by here: the floor's own speed-up over naive.
        row["naive_floor_ratio"] = _ratio(row.get("naive_ms"), row.get("floor_ms"))
        row["handler_us_per_message"] = None if row.get("handler_ms") is None else row["handler_ms"] * 1000 / size
        if row.get("handler_ms") is not None:
            row["cost_usd_per_million_submissions"] = cost_per_million(row["handler_ms"], size, memory_mb)


def checks(results: Results, *, scalars: bool = True) -> list[Check]:
    """Every performance target with its measured figure and verdict (``scalars=False``: only the per-batch
    ones, which are all a network changes; CPU, cold start and memory involve no I/O)."""
    found: list[Check] = []
    for size in results.sizes:
        ratio = results.per_size[size].get("handler_floor_ratio")
        found.append(
            Check(f"handler / floor at {size:,}", ratio, f"<= {FLOOR_RATIO_MAX}", _at_most(ratio, FLOOR_RATIO_MAX))
        )
    speedup = results.per_size.get(NAIVE_SPEEDUP_SIZE, {}).get("naive_speedup")
    found.append(
        Check(
            f"naive / handler at {NAIVE_SPEEDUP_SIZE:,}",
            speedup,
            f">= {NAIVE_SPEEDUP_MIN}",
            None if speedup is None else speedup >= NAIVE_SPEEDUP_MIN,
        )
    )
    if scalars:
        found += _scalar_checks(results.scalars)
    for size in results.sizes:
        row = results.per_size[size]
        statements = row.get("ledger_statements")
        found.append(
            Check(
                f"ledger statements per batch at {size:,}",
                statements,
                f"== {LEDGER_STATEMENTS}",
                None if statements is None else statements == LEDGER_STATEMENTS,
            )
        )
        calls, packing, slack = row.get("putrecords_calls"), row.get("putrecords_calls_packing"), row.get("call_slack")
        found.append(
            Check(
                f"PutRecords calls per batch at {size:,}",
                calls,
                f"<= {packing} + {slack} (packing + concurrency tail)",
                None if calls is None or packing is None else calls <= packing + (slack or 0),
            )
        )
    return found


def _scalar_checks(scalars: dict[str, Any]) -> list[Check]:
    cpu = scalars.get("cpu_ratio")
    cold = scalars.get("cold_start_ratio")
    rss = scalars.get("peak_rss_mib")
    return [
        Check("cpu / bare decode+parse+serialise", cpu, f"<= {CPU_RATIO_MAX}", _at_most(cpu, CPU_RATIO_MAX)),
        Check(
            "handler import / import boto3", cold, f"<= {COLD_START_RATIO_MAX}", _at_most(cold, COLD_START_RATIO_MAX)
        ),
        Check(
            f"peak RSS MiB, {scalars.get('memory_messages', 0):,}-message batch",
            rss,
            f"< {PEAK_RSS_MAX_MIB:g}",
            None if rss is None else rss < PEAK_RSS_MAX_MIB,
        ),
    ]


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def to_json(results: Results, found: list[Check], modelled: Modelled | None = None) -> dict[str, Any]:
    """The ``build/bench.json`` document: loopback figures at the top level, as before, and the
    modelled-network figures under ``modelled_network`` when that mode ran."""
    by_size = {str(size): results.per_size[size] for size in results.sizes}
    document = {
        **results.meta,
        "price": PRICE_NOTE,
        "batch_sizes": by_size,
        **results.scalars,
        "ledger_statements_per_batch": {s: row.get("ledger_statements") for s, row in by_size.items()},
        "putrecords_calls_per_batch": {s: row.get("putrecords_calls") for s, row in by_size.items()},
        "putrecords_calls_packing": {s: row.get("putrecords_calls_packing") for s, row in by_size.items()},
        "putrecords_calls_lower_bound": {s: row.get("putrecords_calls_lower_bound") for s, row in by_size.items()},
        "checks": [check.row() for check in found],
        "all_pass": all(check.passed is not False for check in found),
    }
    if modelled is not None:
        document["modelled_network"] = {
            **modelled.results.meta,
            **{str(size): modelled.results.per_size[size] for size in modelled.results.sizes},
            "targets": [check.row() for check in modelled.checks],
            "all_pass": all(check.passed is not False for check in modelled.checks),
        }
    return document


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write the JSON document, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def size_table(results: Results) -> list[str]:
    """The per-batch-size Markdown table of one mode."""
    lines = [
        "| batch | handler ms | handler c=4 ms | floor ms | floor unordered ms | naive ms | handler/floor "
        "| c=4/floor | floor/unordered | naive/handler | µs/message | $ per 1M submissions |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in results.sizes:
        row = results.per_size[size]
        lines.append(
            f"| {size:,} | {_fmt(row.get('handler_ms'), 1)} | {_fmt(row.get('handler_concurrent_ms'), 1)} "
            f"| {_fmt(row.get('floor_ms'), 1)} "
            f"| {_fmt(row.get('floor_unordered_ms'), 1)} | {_fmt(row.get('naive_ms'), 1)} "
            f"| {_fmt(row.get('handler_floor_ratio'))} | {_fmt(row.get('handler_concurrent_floor_ratio'))} "
            f"| {_fmt(row.get('ordering_price_ratio'))} "
            f"| {_fmt(row.get('naive_speedup'))} | {_fmt(row.get('handler_us_per_message'), 0)} "
            f"| {_fmt(row.get('cost_usd_per_million_submissions'), 3)} |"
        )
    return lines


_VERDICT = {True: "PASS", False: "FAIL", None: "not measured"}


def render(results: Results, found: list[Check], modelled: Modelled | None = None) -> str:
    """The Markdown tables printed at the end of a run (and pasted into docs/benchmarks.md)."""
    if modelled is None:
        lines = size_table(results)
        lines += ["", "| figure | measured | target | pass |", "| --- | ---: | --- | --- |"]
        for check in found:
            lines.append(f"| {check.figure} | {_fmt(check.measured)} | {check.target} | {_VERDICT[check.passed]} |")
        return "\n".join(lines)
    meta = modelled.results.meta
    lines = ["Loopback (no network latency):", "", *size_table(results), ""]
    lines += [
        f"Modelled network ({modelled.label}; {meta['repeats']} runs per case, {meta['large_repeats']} at 10,000; "
        f"naive up to {meta['naive_max']:,} messages):",
        "",
        *size_table(modelled.results),
        "",
        "| figure | target | loopback | pass | modelled network | pass |",
        "| --- | --- | ---: | --- | ---: | --- |",
    ]
    by_figure = {check.figure: check for check in modelled.checks}
    for check in found:
        other = by_figure.get(check.figure)
        if other is None:
            theirs = f"- | {_VERDICT[check.passed]} (no I/O)"
        else:
            theirs = f"{_fmt(other.measured)} | {_VERDICT[other.passed]}"
        lines.append(
            f"| {check.figure} | {check.target} | {_fmt(check.measured)} | {_VERDICT[check.passed]} | {theirs} |"
        )
    ours = {check.figure for check in found}
    for other in modelled.checks:  # only when the loopback mode did not run
        if other.figure not in ours:
            lines.append(
                f"| {other.figure} | {other.target} | - | not measured "
                f"| {_fmt(other.measured)} | {_VERDICT[other.passed]} |"
            )
    return "\n".join(lines)


@dataclass
class Modelled:
    """The modelled-network mode's figures and verdicts."""

    results: Results
    checks: list[Check]
    kinesis_rtt_ms: float
    sql_rtt_ms: float

    @property
    def label(self) -> str:
        """How the table names the mode."""
        return f"{self.kinesis_rtt_ms:g} ms per PutRecords call, {self.sql_rtt_ms:g} ms per SQL round trip"
