"""The benchmark chart (``--publish`` copies it to docs/bench.png): time per message against batch size,
one panel per network mode (loopback, and the modelled network when it ran) on a shared scale, and a
panel of dollars per million submissions for the handler and the Powertools idiom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import Results

_SERIES = (
    ("handler_ms", "handler", "-o"),
    ("handler_concurrent_ms", "handler, PUBLISH_CONCURRENCY=4", ":o"),
    ("handler_pg8000_default_ms", "handler on pg8000's default exchange (3 SQL round trips per statement)", "-.o"),
    ("floor_ms", "I/O floor (ordered)", "-s"),
    ("floor_unordered_ms", "I/O floor (unordered)", ":s"),
    ("powertools_ms", "Powertools idiom (idempotent_function on DynamoDB, 1 PutRecords per message)", "--^"),
)
_COSTS = (
    ("handler_total", "handler: Lambda + PostgreSQL + Kinesis", "-o"),
    ("powertools_total", "idiom: Lambda + DynamoDB + Kinesis", "--^"),
)


def draw(results: Results, path: Path, modelled: Results | None = None) -> None:
    """Save a PNG to ``path`` (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[Results, str]] = []
    if results.sizes:
        panels.append((results, "loopback: no network latency"))
    if modelled is not None:
        meta = modelled.meta
        title = (
            f"modelled network: {meta['kinesis_rtt_ms']:g} ms / PutRecords, {meta['sql_rtt_ms']:g} ms / SQL trip, "
            f"{meta['dynamodb_rtt_ms']:g} ms / DynamoDB call"
        )
        panels.append((modelled, title))
    priced = modelled if modelled is not None else results
    figure, axes = plt.subplots(1, len(panels) + 1, figsize=(6.5 * (len(panels) + 1), 5.2), dpi=110, squeeze=False)
    for ax, (panel, title) in zip(axes[0], panels, strict=False):
        _plot(ax, panel, title)
        ax.set_ylabel("µs per message (median)")
    timed = axes[0][: len(panels)]
    low = min(ax.get_ylim()[0] for ax in timed)
    high = max(ax.get_ylim()[1] for ax in timed)
    for ax in timed:  # one scale for both modes, so the panels compare at a glance
        ax.set_ylim(low, high)
    _plot_costs(axes[0][-1], priced, "modelled" if modelled is not None else "loopback")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle("Telemetry Adapter: time per message and cost (PostgreSQL, Kinesis and DynamoDB on moto)")
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def _plot(axes: Any, results: Results, title: str) -> None:
    for key, label, style in _SERIES:
        points = [
            (size, results.per_size[size][key] * 1000 / size)
            for size in results.sizes
            if results.per_size[size].get(key) is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, style, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("messages per batch")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", alpha=0.3)


def _plot_costs(axes: Any, results: Results, mode: str) -> None:
    for key, label, style in _COSTS:
        points = [
            (size, cost[key])
            for size in results.sizes
            if (cost := results.per_size[size].get("cost_usd_per_million_submissions")) and cost.get(key) is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            axes.plot(xs, ys, style, label=label)
    axes.set_xscale("log")
    axes.set_ylim(bottom=0)
    axes.set_xlabel("messages per batch")
    axes.set_ylabel("USD per million submissions")
    axes.set_title(f"cost per million submissions ({mode} durations)", fontsize=9)
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_lines():
        axes.legend(fontsize=7)
