"""The README chart: time per message against batch size, handler against floor and naive."""

from __future__ import annotations

from pathlib import Path

from bench.report import Results

_SERIES = (
    ("handler_ms", "handler", "-o"),
    ("handler_concurrent_ms", "handler, PUBLISH_CONCURRENCY=4", ":o"),
    ("floor_ms", "I/O floor (ordered)", "-s"),
    ("floor_unordered_ms", "I/O floor (unordered)", ":s"),
    ("naive_ms", "naive (1 statement + 1 PutRecords per message)", "--^"),
)


def draw(results: Results, path: Path) -> None:
    """Save a PNG to ``path`` (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
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
    axes.set_ylabel("µs per message (median)")
    axes.set_title("Telemetry Adapter: time per message (PostgreSQL + Kinesis on moto)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
