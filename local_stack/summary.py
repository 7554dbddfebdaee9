"""The run's summary: the figures that say whether anything valid was lost or reordered.

Written as JSON (``build/run-summary.json`` by default) and printed. ``ok`` is true only if no valid
submission was lost, no order was broken, no event id conflicted and no broken submission was
published; ``make run`` exits 0 only then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_stack.checker import Findings

_LOST_IDS_SHOWN = 20


def local_summary(
    snapshot: dict[str, Any], findings: Findings, lost: list[str], *, drained: bool, seed: int
) -> dict[str, Any]:
    """Summary of a local run (fleet, processor and consumer)."""
    summary = _processor_figures(snapshot)
    summary.update(
        {
            "mode": "local",
            "fleet_seed": seed,
            "submissions_sent_by_kind": {
                "valid": snapshot["sent_valid"],
                "defective": snapshot["sent_defective"],
                "hostile": snapshot["sent_hostile"],
                "re_sent_duplicates": snapshot["sent_duplicates"],
                "send_errors": snapshot["send_errors"],
            },
            "events_read": snapshot["records_read"],
            "duplicate_records_read": snapshot["duplicate_records"],
            "order_violations": findings.order_violations,
            "lost_submissions": len(lost),
            "lost_submission_ids": lost[:_LOST_IDS_SHOWN],
            "id_conflicts": findings.id_conflicts,
            "broken_published": findings.broken_published,
            "unexpected_records": findings.unexpected_records,
            "drained": drained,
            "latency_ms": {
                name: round(value, 1) if isinstance(value, float) else value
                for name, value in snapshot["latency_ms"].items()
            },
        }
    )
    summary["ok"] = (
        not lost and findings.order_violations == 0 and findings.id_conflicts == 0 and findings.broken_published == 0
    )
    return summary


def worker_summary(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Summary of a worker run (the processor only; loss and order are for the stream's consumers)."""
    summary = _processor_figures(snapshot)
    summary.update({"mode": "worker", "ok": True})
    return summary


def _processor_figures(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "duration_s": round(s["elapsed_s"], 1),
        "submissions_sent": s["sent"],
        "submissions_received": s["received"],
        "submissions_acknowledged": s["acknowledged"],
        "events_published": s["events_published"],
        "rejected_by_reason": s["rejected"],
        "duplicates_suppressed": s["duplicates_suppressed"],
        "dlq_depth": s["dlq_depth"],
        "queue_depth": s["queue_depth"],
        "invocations": s["invocations"],
        "invocation_errors": s["invocation_errors"],
        "batch_item_failures": s["failed"],
        "busy_elsewhere": s["busy"],
        "put_records_calls": s["put_calls"],
        "kinesis_records_retried": s["records_retried"],
        "kinesis_records_throttled": s["records_throttled"],
        "ledger_failures": s["ledger_failures"],
        "deadline_stops": s["deadline_stops"],
        "db_sessions_terminated": s["db_sessions_terminated"],
        "health": s["health"],
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """Write the summary as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable summary for the terminal."""
    latency = summary.get("latency_ms") or {}
    lines = [
        f"summary ({summary['mode']}, {summary['duration_s']} s): {'OK' if summary['ok'] else 'FAILED'}",
        f"  submissions sent {summary['submissions_sent']}, acknowledged {summary['submissions_acknowledged']},"
        f" events published {summary['events_published']}",
        f"  rejected {sum(summary['rejected_by_reason'].values())} {summary['rejected_by_reason']}",
        f"  duplicates suppressed {summary['duplicates_suppressed']}, DLQ depth {summary['dlq_depth']},"
        f" queue depth {summary['queue_depth']}",
    ]
    if summary["mode"] == "local":
        lines.append(
            f"  lost submissions {summary['lost_submissions']}, order violations {summary['order_violations']},"
            f" id conflicts {summary['id_conflicts']}, broken published {summary['broken_published']}"
        )
        lines.append(
            f"  latency send->read ms: p50 {latency.get('p50')}, p95 {latency.get('p95')}, p99 {latency.get('p99')}"
            f" over {latency.get('count')} submissions"
        )
    return "\n".join(lines)
