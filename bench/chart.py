"""The benchmark chart (docs/bench.png): time per message against batch size, handler against floor
and naive, one panel per network mode (loopback, and the modelled network when it ran) on a shared
scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import Results

_SERIES = (
    ("handler_ms", "handler", "-o"),
    ("handler_concurrent_ms", "handler, PUBLISH_CONCURRENCY=4", ":o"),
    ("floor_ms", "I/O floor (ordered)", "-s"),
    ("floor_unordered_ms", "I/O floor (unordered)", ":s"),
    ("naive_ms", "naive (1 statement + 1 PutRecords per message)", "--^"),
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
        title = f"modelled network: {meta['kinesis_rtt_ms']:g} ms / PutRecords, {meta['sql_rtt_ms']:g} ms / SQL trip"
        panels.append((modelled, title))
    figure, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), dpi=110, sharey=True, squeeze=False)
    for ax, (panel, title) in zip(axes[0], panels, strict=True):
        _plot(ax, panel, title)
    axes[0][0].set_ylabel("µs per message (median)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    figure.suptitle("Telemetry Adapter: time per message (PostgreSQL + Kinesis on moto)")
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
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
