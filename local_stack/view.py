"""The live terminal view: a small panel redrawn in place on a TTY, one line every few seconds otherwise.

Progress, not a log: the processor's own logs and metrics go to the log file. The panel is redrawn
by moving the cursor back up over it (ANSI ``ESC[nF``) and clearing to the end of the screen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from devkit.terminal import Output

TTY_REFRESH_SECONDS = 1.0
LINE_REFRESH_SECONDS = 5.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _rejected(rejected: dict[str, int], limit: int = 6) -> str:
    if not rejected:
        return "none"
    ordered = sorted(rejected.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{reason} {count}" for reason, count in ordered[:limit])
    return shown + (", ..." if len(ordered) > limit else "")


def render_panel(s: dict[str, Any]) -> list[str]:
    """The panel's lines for one snapshot (tally snapshot plus ``phase`` and checker findings)."""
    latency = s["latency_ms"]
    rejected = sum(s["rejected"].values())
    return [
        f"telemetry adapter · local stack   {s['phase']:<9} {s['elapsed_s']:7.1f} s   health: {s['health']}",
        f"  fleet      sent {_n(s['sent'])}  valid {_n(s['sent_valid'])}  defective {_n(s['sent_defective'])}"
        f"  hostile {_n(s['sent_hostile'])}  re-sent {_n(s['sent_duplicates'])}",
        f"  processor  invocations {_n(s['invocations'])}  received {_n(s['received'])}"
        f"  acknowledged {_n(s['acknowledged'])}  failed {_n(s['failed'])}  busy {_n(s['busy'])}",
        f"  kinesis    events published {_n(s['events_published'])}  put calls {_n(s['put_calls'])}"
        f"  retried {_n(s['records_retried'])} (throttled {_n(s['records_throttled'])})",
        f"  rejected   {_n(rejected)}: {_rejected(s['rejected'])}",
        f"  quarantine stored {_n(s['quarantined'])}  write failures {_n(s['quarantine_failures'])}",
        f"  duplicates suppressed {_n(s['duplicates_suppressed'])}   re-sent records read {_n(s['duplicate_records'])}",
        f"  queues     queue {_n(s['queue_depth'])}   DLQ {_n(s['dlq_depth'])}"
        f"   db sessions killed {_n(s['db_sessions_terminated'])}   ledger {s['ledger']}",
        f"  retries    backed off {_n(s['backed_off'])} (not {_n(s['backoff_failures'])})"
        f"   breaker {s['breaker']} (opened {_n(s['breaker_opened'])}, batches refused {_n(s['breaker_refused'])})",
        f"  consumer   records read {_n(s['records_read'])}  submissions complete {_n(s['submissions_seen_complete'])}"
        f"  order violations {_n(s.get('order_violations'))}",
        f"  latency    p50 {_ms(latency['p50'])} ms  p95 {_ms(latency['p95'])} ms  p99 {_ms(latency['p99'])} ms"
        f"  (send to read)",
    ]


def render_line(s: dict[str, Any]) -> str:
    """One compact progress line for a non-TTY output."""
    latency = s["latency_ms"]
    return (
        f"[{s['elapsed_s']:6.0f}s {s['phase']}] sent {s['sent']} acked {s['acknowledged']}"
        f" events {s['events_published']} rejected {sum(s['rejected'].values())}"
        f" quarantined {s['quarantined']}"
        f" dups {s['duplicates_suppressed']} retried {s['records_retried']}"
        f" queue {_n(s['queue_depth'])} dlq {_n(s['dlq_depth'])}"
        f" backed-off {s['backed_off']} breaker {s['breaker']} ledger {s['ledger']}"
        f" p50/p95/p99 {_ms(latency['p50'])}/{_ms(latency['p95'])}/{_ms(latency['p99'])} ms"
        f" health {s['health']}"
    )


class LiveView:
    """Redraws the view on a thread until stopped; draws a last frame on stop."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], out: Output, *, tty: bool | None = None) -> None:
        self._snapshot = snapshot
        self._out = out
        self._tty = out.isatty() if tty is None else tty
        self._drawn = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="view", daemon=True)

    def start(self) -> None:
        """Start drawing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop drawing, after one final frame."""
        self._stop.set()
        self._thread.join(5)
        self.draw()

    def draw(self) -> None:
        """Draw one frame."""
        snapshot = self._snapshot()
        if self._tty:
            lines = render_panel(snapshot)
            prefix = f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""
            self._out.write(prefix + "\n".join(lines) + "\n")
            self._drawn = len(lines)
        else:
            self._out.write(render_line(snapshot) + "\n")
        self._out.flush()

    def _run(self) -> None:
        period = TTY_REFRESH_SECONDS if self._tty else LINE_REFRESH_SECONDS
        while not self._stop.wait(period):
            self.draw()
