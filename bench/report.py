"""Figures to targets: the performance targets' pass/fail table, the Markdown tables, ``build/bench.json``.

Costs come from :mod:`bench.cost`, whose prices are stated assumptions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cost import Workload, assumptions, costs

FLOOR_RATIO_MAX = 1.25
IDIOM_SPEEDUP_MIN = 5.0
IDIOM_SPEEDUP_SIZE = 1_000
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
    """None when the figure was not measured in this run, or is only reported (``informational``)."""
    informational: bool = False
    """Reported beside a target that applies to the other network mode; never fails a run."""

    def row(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "figure": self.figure,
            "measured": self.measured,
            "target": self.target,
            "pass": self.passed,
            "informational": self.informational,
        }

    @property
    def verdict(self) -> str:
        """PASS, FAIL, reported, or not measured."""
        if self.informational and self.measured is not None:
            return "reported"
        return {True: "PASS", False: "FAIL", None: "not measured"}[self.passed]


@dataclass
class Results:
    """Every figure one bench run produced (medians)."""

    sizes: list[int]
    per_size: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Per batch size: ``<case>_ms`` for every case, the counts, ratios and costs."""
    workloads: dict[int, Workload] = field(default_factory=dict)
    """Per batch size: the record sizes the cost of Kinesis follows from."""
    scalars: dict[str, Any] = field(default_factory=dict)
    """``cpu_ratio``, ``cold_start_ratio``, ``peak_rss_mib`` and their raw figures."""
    meta: dict[str, Any] = field(default_factory=dict)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def derive(results: Results, memory_mb: int, throughput: float) -> None:
    """Add the ratios and costs that follow from the measured figures."""
    for size, row in results.per_size.items():
        row["handler_floor_ratio"] = _ratio(row.get("handler_ms"), row.get("floor_ms"))
        row["handler_concurrent_floor_ratio"] = _ratio(row.get("handler_concurrent_ms"), row.get("floor_ms"))
        row["handler_pg8000_default_floor_ratio"] = _ratio(row.get("handler_pg8000_default_ms"), row.get("floor_ms"))
        # How much faster the handler is on the ledger's connection than on pg8000's own.
        row["one_trip_speedup"] = _ratio(row.get("handler_pg8000_default_ms"), row.get("handler_ms"))
        row["ordering_price_ratio"] = _ratio(row.get("floor_ms"), row.get("floor_unordered_ms"))
        ledger, default = row.get("ledger_ms"), row.get("ledger_pg8000_default_ms")
        row["one_trip_saves_ms"] = None if ledger is None or default is None else default - ledger
        nodelay = row.get("ledger_nodelay_ms")
        row["nodelay_saves_ms"] = None if default is None or nodelay is None else default - nodelay
        row["powertools_speedup"] = _ratio(row.get("powertools_ms"), row.get("handler_ms"))
        # The most any design on this I/O could beat the idiom by: the floor's own speed-up over it.
        row["powertools_floor_ratio"] = _ratio(row.get("powertools_ms"), row.get("floor_ms"))
        row["handler_us_per_message"] = None if row.get("handler_ms") is None else row["handler_ms"] * 1000 / size
        workload = results.workloads.get(size)
        if workload is not None:
            row["cost_usd_per_million_submissions"] = costs(
                workload,
                handler_ms=row.get("handler_ms"),
                powertools_ms=row.get("powertools_ms"),
                dynamodb_writes=row.get("powertools_dynamodb_writes"),
                dynamodb_reads=row.get("powertools_dynamodb_reads"),
                memory_mb=memory_mb,
                throughput=throughput,
            )


def checks(results: Results, *, scalars: bool = True, idiom_target: bool = True) -> list[Check]:
    """Every performance target with its measured figure and verdict.

    ``scalars=False``: only the per-batch ones, which are all a network changes (CPU, cold start and
    memory involve no I/O). ``idiom_target=False``: the speed-up over the idiom is reported, not judged
    (its target is set for the modelled network).
    """
    found: list[Check] = []
    for size in results.sizes:
        ratio = results.per_size[size].get("handler_floor_ratio")
        found.append(
            Check(f"handler / floor at {size:,}", ratio, f"<= {FLOOR_RATIO_MAX}", _at_most(ratio, FLOOR_RATIO_MAX))
        )
    speedup = results.per_size.get(IDIOM_SPEEDUP_SIZE, {}).get("powertools_speedup")
    found.append(
        Check(
            f"Powertools idiom / handler at {IDIOM_SPEEDUP_SIZE:,}",
            speedup,
            f">= {IDIOM_SPEEDUP_MIN:g} (modelled network)",
            None if speedup is None or not idiom_target else speedup >= IDIOM_SPEEDUP_MIN,
            informational=not idiom_target,
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
    found = [
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
    long_run = scalars.get("long_submission")
    if long_run is not None:
        found.append(
            Check(
                f"{long_run['events']:,}-event submission at {long_run['put_records_ms']:g} ms per PutRecords",
                long_run["deliveries"],
                "complete, in order, no DLQ, never redelivered (deliveries used)",
                bool(long_run["passed"]),
            )
        )
    return found


def _at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def to_json(
    results: Results, found: list[Check], modelled: Modelled | None, *, memory_mb: int, throughput: float
) -> dict[str, Any]:
    """The ``build/bench.json`` document: loopback figures at the top level, the modelled-network
    figures under ``modelled_network`` when that mode ran, and the cost assumptions."""
    by_size = {str(size): results.per_size[size] for size in results.sizes}
    document = {
        **results.meta,
        "cost_assumptions": assumptions(memory_mb, throughput),
        "batch_sizes": by_size,
        **results.scalars,
        "ledger_statements_per_batch": {s: row.get("ledger_statements") for s, row in by_size.items()},
        "sql_round_trips_per_batch": {s: row.get("sql_round_trips") for s, row in by_size.items()},
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
    """The per-batch-size timing table of one mode (milliseconds, medians)."""
    lines = [
        "| batch | handler | c=4 | pg8000 default | floor | floor unordered | Powertools idiom | handler/floor "
        "| c=4/floor | pg8000 default/floor | floor/unordered | idiom/handler | idiom/floor |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in results.sizes:
        row = results.per_size[size]
        cells = [
            *(_fmt(row.get(f"{case}_ms"), 1) for case in _TIMED),
            *(_fmt(row.get(key)) for key in _RATIOS),
        ]
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return lines


_TIMED = ("handler", "handler_concurrent", "handler_pg8000_default", "floor", "floor_unordered", "powertools")
_RATIOS = (
    "handler_floor_ratio",
    "handler_concurrent_floor_ratio",
    "handler_pg8000_default_floor_ratio",
    "ordering_price_ratio",
    "powertools_speedup",
    "powertools_floor_ratio",
)


def calls_table(results: Results) -> list[str]:
    """Calls per batch of each kind (the same in both network modes)."""
    lines = [
        "| batch | events | handler: SQL statements | SQL round trips | SQL round trips (pg8000 default) "
        "| PutRecords | ordering rule needs | idiom: DynamoDB calls | idiom: PutRecords |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = (
        "events_per_batch",
        "ledger_statements",
        "sql_round_trips",
        "sql_round_trips_pg8000_default",
        "putrecords_calls",
        "putrecords_calls_packing",
        "powertools_dynamodb_calls",
        "powertools_putrecords_calls",
    )
    for size in results.sizes:
        row = results.per_size[size]
        lines.append(f"| {size:,} | " + " | ".join(_fmt(row.get(key)) for key in keys) + " |")
    return lines


def ledger_table(results: Results, modelled: Results | None) -> list[str]:
    """The ledger's two statements alone (ms): as pg8000 sends them by default, with only TCP_NODELAY set,
    and on the ledger's connection (one round trip each, TCP_NODELAY set); what the last saves."""
    lines = [
        "| batch | loopback: pg8000 default | TCP_NODELAY only | ledger (one trip) | saved "
        "| modelled: pg8000 default | TCP_NODELAY only | ledger (one trip) | saved |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in results.sizes or (modelled.sizes if modelled else []):
        cells = []
        for mode in (results, modelled):
            row = mode.per_size.get(size, {}) if mode is not None else {}
            keys = ("ledger_pg8000_default_ms", "ledger_nodelay_ms", "ledger_ms", "one_trip_saves_ms")
            cells += [_fmt(row.get(key)) for key in keys]
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return lines


def cost_table(results: Results) -> list[str]:
    """Dollars per million submissions of both designs, line by line."""
    lines = [
        "| batch | handler: Lambda | PostgreSQL (RDS + Proxy) | Kinesis | total "
        "| idiom: Lambda | DynamoDB | Kinesis | total | idiom/handler |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in results.sizes:
        cost = results.per_size[size].get("cost_usd_per_million_submissions") or {}
        cells = [
            cost.get("handler_lambda"),
            cost.get("handler_postgres_rds"),
            cost.get("kinesis_on_demand"),
            cost.get("handler_total"),
            cost.get("powertools_lambda"),
            cost.get("powertools_dynamodb"),
            cost.get("kinesis_on_demand"),
            cost.get("powertools_total"),
        ]
        ratio = _ratio(cost.get("powertools_total"), cost.get("handler_total"))
        lines.append(f"| {size:,} | " + " | ".join(_fmt(c, 3) for c in cells) + f" | {_fmt(ratio)} |")
    return lines


def render(results: Results, found: list[Check], modelled: Modelled | None = None) -> str:
    """The Markdown tables printed at the end of a run (and pasted into docs/benchmarks.md)."""
    lines: list[str] = []
    if results.sizes:
        lines += ["Loopback (no network latency), ms per batch:", "", *size_table(results), ""]
    if modelled is not None:
        meta = modelled.results.meta
        lines += [
            f"Modelled network ({modelled.label}; {meta['repeats']} runs per case, {meta['large_repeats']} at "
            f"10,000; idiom up to {meta['powertools_max']:,} messages), ms per batch:",
            "",
            *size_table(modelled.results),
            "",
        ]
    counted = results if results.sizes else (modelled.results if modelled else results)
    lines += ["Calls per batch:", "", *calls_table(counted), ""]
    lines += [
        "Ledger statements per batch (claim + outcome) alone, ms:",
        "",
        *ledger_table(results, modelled.results if modelled else None),
        "",
    ]
    priced = modelled.results if modelled is not None else results
    mode = "modelled network" if modelled is not None else "loopback"
    lines += [f"Dollars per million submissions ({mode} durations):", "", *cost_table(priced), ""]
    long_run = results.scalars.get("long_submission")
    if long_run is not None:
        lines += [*long_submission_lines(long_run), ""]
    lines += _checks_table(found, modelled)
    return "\n".join(lines)


def long_submission_lines(run: dict[str, Any]) -> list[str]:
    """The one-submission case in a sentence and a row."""
    verdict = "PASS" if run["passed"] else "FAIL"
    return [
        f"One {run['events']:,}-event submission at {run['put_records_ms']:g} ms per PutRecords, through the "
        f"real handler and the emulated event source mapping (function timeout {run['function_timeout_s']} s, "
        f"maxReceiveCount {run['max_receive_count']}):",
        "",
        "| deliveries | highest receive count | time in AWS | real | queue waits skipped | events on the stream "
        "| in order | DLQ | verdict |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
        f"| {run['deliveries']} | {run['highest_receive_count']} | {run['seconds']:,.1f} s "
        f"| {run['real_seconds']:,.1f} s | {run['skipped_seconds']:,.1f} s "
        f"| {run['distinct_events']:,} of {run['events']:,} | {'yes' if run['in_order'] else 'NO'} "
        f"| {'yes' if run['dead_lettered'] else 'no'} | {verdict} |",
    ]


def _checks_table(found: list[Check], modelled: Modelled | None) -> list[str]:
    if modelled is None:
        lines = ["| figure | measured | target | verdict |", "| --- | ---: | --- | --- |"]
        lines += [f"| {c.figure} | {_fmt(c.measured)} | {c.target} | {c.verdict} |" for c in found]
        return lines
    lines = [
        "| figure | target | loopback | verdict | modelled network | verdict |",
        "| --- | --- | ---: | --- | ---: | --- |",
    ]
    by_figure = {check.figure: check for check in modelled.checks}
    for check in found:
        other = by_figure.get(check.figure)
        theirs = (
            f"- | {check.verdict} (measured once)" if other is None else f"{_fmt(other.measured)} | {other.verdict}"
        )
        lines.append(f"| {check.figure} | {check.target} | {_fmt(check.measured)} | {check.verdict} | {theirs} |")
    ours = {check.figure for check in found}
    for other in modelled.checks:  # only when the loopback mode did not run
        if other.figure not in ours:
            lines.append(
                f"| {other.figure} | {other.target} | - | not measured | {_fmt(other.measured)} | {other.verdict} |"
            )
    return lines


@dataclass
class Modelled:
    """The modelled-network mode's figures and verdicts."""

    results: Results
    checks: list[Check]
    kinesis_rtt_ms: float
    sql_rtt_ms: float
    dynamodb_rtt_ms: float

    @property
    def label(self) -> str:
        """How the table names the mode."""
        return (
            f"{self.kinesis_rtt_ms:g} ms per PutRecords call, {self.sql_rtt_ms:g} ms per SQL round trip, "
            f"{self.dynamodb_rtt_ms:g} ms per DynamoDB call"
        )
