"""How the tool prints: one line per message for people, or JSON Lines (``--json``) for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from ops.bodies import BodyView
from ops.dlq import DeadLetter
from ops.quarantine import Found

DOCUMENT_PREVIEW_CHARS = 20_000
"""A decoded body is shown up to this long (``--raw`` prints the body whole)."""
_RAW_PREVIEW_CHARS = 300


def duration(span: timedelta) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``7s``: the two largest units."""
    seconds = int(abs(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{value}{unit}" for value, unit in parts[:2])


def timestamp(moment: datetime) -> str:
    """ISO 8601, UTC, seconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def verdict(view: BodyView) -> str:
    """``valid, 3 events`` or ``rejected: invalid_ip (destination_ip)``."""
    if view.valid:
        return f"valid, {view.event_count} events"
    return f"rejected: {view.verdict}" + (f" ({view.detail})" if view.detail else "")


def dead_letter_json(letter: DeadLetter, now: datetime) -> dict[str, Any]:
    """One DLQ message for ``--json``."""
    view = letter.view
    return {
        "message_id": letter.message_id,
        "submission_id": view.submission_id,
        "device_id": view.device_id,
        "verdict": view.verdict,
        "detail": view.detail or None,
        "event_count": view.event_count,
        "sender_id": letter.sender_id,
        "receive_count": letter.receive_count,
        "sent_at": timestamp(letter.sent_at),
        "first_received_at": timestamp(letter.first_received_at) if letter.first_received_at else None,
        "age_seconds": int(letter.age(now).total_seconds()),
        "expires_at": timestamp(letter.expires_at),
        "seconds_left": int(letter.time_left(now).total_seconds()),
        "source_queue": letter.source_queue,
        "attributes": letter.attributes,
        "body_bytes": len(letter.body.encode("utf-8", errors="surrogatepass")),
    }


def dead_letter_line(letter: DeadLetter, now: datetime) -> str:
    """One DLQ message for people."""
    view = letter.view
    left = letter.time_left(now)
    expiry = f"expires in {duration(left)}" if left.total_seconds() > 0 else f"overdue by {duration(left)}"
    attributes = "".join(f"  {name}={value}" for name, value in sorted(letter.attributes.items()))
    return (
        f"{letter.message_id}  submission {view.submission_id or '-'}  device {view.device_id or '-'}  "
        f"sender {letter.sender_id or '-'}  "
        f"{verdict(view)}  received {letter.receive_count}x  age {duration(letter.age(now))}  {expiry} "
        f"({timestamp(letter.expires_at)}){attributes}"
    )


def found_json(item: Found) -> dict[str, Any]:
    """One quarantined message (without its body) for ``--json``."""
    message = item.message
    return {
        "key": item.key,
        "message_id": message.message_id,
        "reason": message.reason,
        "field": message.field,
        "quarantined_at": message.quarantined_at,
        "submission_id": message.submission_id,
        "device_id": message.device_id,
        "sender_id": message.sender_id,
        "sent_at": message.sent_at,
        "receive_count": message.receive_count,
        "body_bytes": len(message.body.encode("utf-8", errors="surrogatepass")),
    }


def found_line(item: Found) -> str:
    """One quarantined message for people: enough to ``show`` or ``replay`` it."""
    message = item.message
    return (
        f"{message.quarantined_at}  {message.reason} ({message.field})  device {message.device_id or '-'}  "
        f"submission {message.submission_id or '-'}  message {message.message_id}  {item.key}"
    )


def show(item: Found, view: BodyView, out: TextIO) -> None:
    """A quarantined message in full: its record, what this version's decoder says now, its body."""
    message = item.message
    for label, value in (
        ("object", item.key),
        ("message id", message.message_id),
        ("reason", f"{message.reason} ({message.field})"),
        ("quarantined at", message.quarantined_at),
        ("sent at", message.sent_at),
        ("sender", message.sender_id),
        ("receive count", message.receive_count),
        ("submission", message.submission_id),
        ("device", message.device_id),
        ("decoder now", verdict(view)),
    ):
        out.write(f"{label:<15} {value if value is not None else '-'}\n")
    if view.document is not None:
        text = json.dumps(view.document, indent=2, ensure_ascii=False)
        out.write("body (decoded):\n")
        out.write(
            text[:DOCUMENT_PREVIEW_CHARS]
            + ("\n... (cut; --raw prints the body whole)" if len(text) > DOCUMENT_PREVIEW_CHARS else "")
            + "\n"
        )
    else:
        raw = message.body
        shown = json.dumps(raw[:_RAW_PREVIEW_CHARS], ensure_ascii=True)
        out.write(f"body (not a JSON object, {len(raw)} characters, start shown escaped): {shown}\n")


def json_line(document: Any, out: TextIO) -> None:
    """One JSON document on one line."""
    out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
