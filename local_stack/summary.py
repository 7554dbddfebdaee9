"""The run's summary: the figures that say whether anything valid was lost or reordered.

Written as JSON (``build/run-summary.json`` by default) and printed. ``ok`` is true only if every valid
submission arrived whole, no order was broken, no event id conflicted and no broken submission was
published; ``make run`` exits 0 only then. A valid submission that did not arrive is *lost* only when
every copy of it was acknowledged (deleted from the queue); one still on SQS (a run stopped before
its drain ended) is *unfinished*, which fails the run as unverified but is not a loss.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_stack.checker import Findings, Unaccounted

_LOST_IDS_SHOWN = 20


def local_summary(
    snapshot: dict[str, Any], findings: Findings, unaccounted: Unaccounted, *, drained: bool, seed: int
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
            "lost_submissions": len(unaccounted.lost),
            "lost_submission_ids": unaccounted.lost[:_LOST_IDS_SHOWN],
            "unfinished_submissions": len(unaccounted.unfinished),
            "unfinished_submission_ids": unaccounted.unfinished[:_LOST_IDS_SHOWN],
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
        not unaccounted.lost
        and not unaccounted.unfinished
        and findings.order_violations == 0
        and findings.id_conflicts == 0
        and findings.broken_published == 0
    )
    return summary


def worker_summary(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Summary of a worker run (the processor only; loss and order are for the stream's consumers).

    ``ok`` is false when the queue could not be polled, an invocation failed as a whole, or the ledger
    could not be reached: a worker that could not do its job exits non-zero, as a local run does.
    """
    summary = _processor_figures(snapshot)
    summary["mode"] = "worker"
    summary["ok"] = not (summary["poll_errors"] or summary["invocation_errors"] or summary["ledger_failures"])
    return summary


def _processor_figures(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "duration_s": round(s["elapsed_s"], 1),
        "submissions_sent": s["sent"],
        "submissions_received": s["received"],
        "submissions_acknowledged": s["acknowledged"],
        "events_published": s["events_published"],
        "rejected_by_reason": s["rejected"],
        "quarantined": s["quarantined"],
        "quarantine_write_failures": s["quarantine_failures"],
        "duplicates_suppressed": s["duplicates_suppressed"],
        "dlq_depth": s["dlq_depth"],
        "queue_depth": s["queue_depth"],
        "invocations": s["invocations"],
        "invocation_errors": s["invocation_errors"],
        "poll_errors": s["poll_errors"],
        "batch_item_failures": s["failed"],
        "busy_elsewhere": s["busy"],
        "put_records_calls": s["put_calls"],
        "kinesis_records_retried": s["records_retried"],
        "kinesis_records_throttled": s["records_throttled"],
        "ledger_failures": s["ledger_failures"],
        "deadline_stops": s["deadline_stops"],
        "db_sessions_terminated": s["db_sessions_terminated"],
        "ledger_outages": s["ledger_outages"],
        "messages_backed_off": s["backed_off"],
        "backoff_failures": s["backoff_failures"],
        "circuit_breaker": s["breaker"],
        "circuit_breaker_opened": s["breaker_opened"],
        "batches_refused_by_breaker": s["breaker_refused"],
        "health": s["health"],
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    """Write the summary as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _problems(summary: dict[str, Any]) -> list[str]:
    named = (
        ("lost_submissions", "valid submissions lost"),
        ("order_violations", "order violations"),
        ("id_conflicts", "event id conflicts"),
        ("broken_published", "broken submissions published"),
        ("poll_errors", "failed queue polls"),
        ("invocation_errors", "failed invocations"),
    )
    problems = [f"{_n(summary[key])} {label}" for key, label in named if summary.get(key)]
    if summary.get("unfinished_submissions"):
        where = "still queued or in the DLQ" if summary.get("dlq_depth") else "still queued"
        problems.insert(0, f"{_n(summary['unfinished_submissions'])} valid submissions unfinished ({where})")
    if summary["mode"] == "worker" and summary["ledger_failures"]:
        problems.append(f"{_n(summary['ledger_failures'])} batches could not reach the ledger")
    return problems


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few aligned lines of text for the terminal (the JSON file has everything)."""
    problems = _problems(summary)
    only_unfinished = problems and all(" unfinished " in problem for problem in problems)
    failed = "INCOMPLETE: " if only_unfinished else "FAILED: "
    verdict = "OK" if summary["ok"] else failed + ", ".join(problems or ["see the JSON summary"])
    rejected = summary["rejected_by_reason"]
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(rejected.items(), key=lambda kv: -kv[1]))
    lines = [
        f"summary ({summary['mode']} run, {summary['duration_s']} s): {verdict}",
        f"  submissions  sent {_n(summary['submissions_sent'])}{{kinds}},"
        f" received {_n(summary['submissions_received'])}, acknowledged {_n(summary['submissions_acknowledged'])}",
        f"  events       published {_n(summary['events_published'])}",
        f"  rejected     {_n(sum(rejected.values()))}" + (f": {reasons}" if reasons else ""),
        f"  quarantine   stored {_n(summary['quarantined'])},"
        f" write failures {_n(summary['quarantine_write_failures'])}",
        f"  duplicates   suppressed {_n(summary['duplicates_suppressed'])}",
        f"  queues       queue {_n(summary['queue_depth'])}, DLQ {_n(summary['dlq_depth'])}",
        f"  kinesis      put calls {_n(summary['put_records_calls'])}, records retried"
        f" {_n(summary['kinesis_records_retried'])} (throttled {_n(summary['kinesis_records_throttled'])})",
        f"  processor    invocations {_n(summary['invocations'])}, failed {_n(summary['invocation_errors'])},"
        f" batch item failures {_n(summary['batch_item_failures'])}, ledger failures {_n(summary['ledger_failures'])}",
    ]
    if summary["mode"] == "local":
        kinds = summary["submissions_sent_by_kind"]
        latency = summary.get("latency_ms") or {}
        lines[1] = lines[1].replace(
            "{kinds}",
            f" (valid {_n(kinds['valid'])}, defective {_n(kinds['defective'])}, hostile {_n(kinds['hostile'])},"
            f" re-sent {_n(kinds['re_sent_duplicates'])})",
        )
        lines[2] += f", read back {_n(summary['events_read'])} (re-sent copies {_n(summary['duplicate_records_read'])})"
        lines[6] += "" if summary["drained"] else " (not drained before the drain timeout)"
        lines.append(
            f"  checks       lost {_n(summary['lost_submissions'])},"
            f" unfinished {_n(summary['unfinished_submissions'])},"
            f" order violations {_n(summary['order_violations'])}, id conflicts {_n(summary['id_conflicts'])},"
            f" broken published {_n(summary['broken_published'])}"
        )
        lines.append(
            f"  latency      send to read p50 {_n(latency.get('p50'))} ms, p95 {_n(latency.get('p95'))} ms,"
            f" p99 {_n(latency.get('p99'))} ms over {_n(latency.get('count'))} submissions"
        )
    lines.insert(
        8,
        f"  retries      backed off {_n(summary['messages_backed_off'])} (not {_n(summary['backoff_failures'])}),"
        f" circuit breaker {summary['circuit_breaker']} (opened {_n(summary['circuit_breaker_opened'])},"
        f" batches refused {_n(summary['batches_refused_by_breaker'])})",
    )
    lines.append(f"  health       {summary['health']}")
    return "\n".join(lines).replace("{kinds}", "")
