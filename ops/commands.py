"""The verbs: each takes the parsed flags, the target and the output, and returns the exit status.

0: done. 1: refused, not found, or some messages failed (said on stderr). Usage and target errors
(status 2) are the command line's (``ops.cli``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from ops import dlq, quarantine, report
from ops.bodies import inspect_body
from ops.functions import OperationError, stack_functions
from ops.pacing import Pacer
from ops.quarantine import Filters, Found
from ops.target import Target
from telemetry_adapter.quarantine_format import decode


def dlq_peek(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    """Show what waits in the DLQ; delete nothing, hide nothing for long."""
    url = target.need("dlq_url", "dlq peek")
    sqs = target.client("sqs")
    waiting = dlq.depth(sqs, url)
    letters = dlq.peek(sqs, url, args.limit)
    now = datetime.now(UTC)
    if args.json:
        for letter in letters:
            document = report.dead_letter_json(letter, now)
            report.json_line({**document, "body": letter.body} if args.bodies else document, out)
        return 0
    out.write(
        f"{len(letters)} of about {waiting} messages in {url.rsplit('/', 1)[-1]} (none deleted, all visible again)\n"
    )
    for letter in sorted(letters, key=lambda item: item.expires_at):
        out.write(report.dead_letter_line(letter, now) + "\n")
        if args.bodies and letter.view.document is not None:
            report.json_line(letter.view.document, out)
    return 0


def dlq_redrive(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    """Move DLQ messages back to the submissions queue, paced, unless the stack says it is failing."""
    dlq_url = target.need("dlq_url", "dlq redrive")
    queue_url = target.need("queue_url", "dlq redrive")
    refusal = _health_refusal(target, args.force)
    sqs = target.client("sqs")
    limit = args.limit or dlq.depth(sqs, dlq_url)
    if args.dry_run:
        letters = dlq.peek(sqs, dlq_url, max(1, limit)) if limit else []
        now = datetime.now(UTC)
        for letter in letters:
            out.write(report.dead_letter_line(letter, now) + "\n")
        out.write(f"dry run: would move {len(letters)} messages to {queue_url} at {args.rate:g} per second\n")
        if refusal:
            sys.stderr.write(refusal + "\n")
            return 1
        return 0
    if refusal:
        sys.stderr.write(refusal + "\n")
        return 1
    if limit == 0:
        out.write("the dead-letter queue is empty: nothing to move\n")
        return 0

    def progress(result: dlq.RedriveResult) -> None:
        sys.stderr.write(f"  moved {result.moved} of up to {limit}\n")

    result = dlq.redrive(sqs, dlq_url, queue_url, limit=limit, pacer=Pacer(args.rate), on_batch=progress)
    out.write(f"moved {result.moved} messages to {queue_url}\n")
    for message_id, code in sorted(result.failed.items()):
        sys.stderr.write(f"not moved (still in the dead-letter queue): {message_id}: {code}\n")
    for message_id in result.without_attribute:
        sys.stderr.write(f"moved without its RedrivenFrom attribute (no room under SQS's 1 MiB): {message_id}\n")
    for message_id in result.not_deleted:
        sys.stderr.write(f"copied but not deleted (it will come back; the ledger publishes it once): {message_id}\n")
    return 1 if result.failed or result.not_deleted else 0


def _health_refusal(target: Target, force: bool) -> str | None:
    """Why a redrive must not start now, or None. A failing stack, or one whose processors' circuit
    breakers are open (a Kinesis outage makes the answer only ``degraded``), would send the messages
    round again."""
    try:
        answer = stack_functions(target).health()
    except OperationError as error:
        if force:
            return None
        return f"refused: cannot tell whether the stack is healthy ({error}); --force redrives anyway"
    if force:
        return None
    status = answer.get("status")
    checks = answer.get("checks") or {}
    breaker = checks.get("circuit_breaker")
    if (
        status != "failing"
        and isinstance(breaker, dict)
        and breaker.get("status") != "ok"
        and breaker.get("reason") == "open"
    ):
        return (
            f"refused: {breaker.get('open', 0)} processors report an open circuit breaker "
            f"({breaker.get('half_open', 0)} half-open): a dependency is down and the messages would only fail "
            "again; wait for it to close, or --force to redrive anyway"
        )
    if status != "failing":
        return None
    failing = sorted(
        name for name, check in checks.items() if isinstance(check, dict) and check.get("status") == "failing"
    )
    return (
        f"refused: the health answer is failing (checks: {', '.join(failing) or 'unknown'}); repair the cause "
        "first, or --force to redrive anyway"
    )


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(
        since=args.since,
        until=args.until,
        reasons=frozenset(args.reason or ()),
        devices=frozenset(args.device or ()),
        submissions=frozenset(args.submission or ()),
        message_ids=frozenset(getattr(args, "message_id", None) or ()),
    )


def _found(args: argparse.Namespace, target: Target, purpose: str) -> Iterator[Found]:
    bucket = target.need("quarantine_bucket", purpose)
    s3 = target.client("s3")
    filters = _filters(args)

    def unreadable(key: str, error: Exception) -> None:
        sys.stderr.write(f"skipped {key}: not a quarantine object ({type(error).__name__})\n")

    keys = getattr(args, "key", None)
    if not keys:
        yield from quarantine.find(s3, bucket, filters, limit=args.limit, on_unreadable=unreadable)
        return
    count = 0
    for key in keys:
        for message in quarantine.read_object(s3, bucket, key):
            if filters.matches(message) and count < args.limit:
                count += 1
                yield Found(key, message)


def quarantine_list(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    """List quarantined messages that match the filters, oldest first."""
    count = 0
    for item in _found(args, target, "quarantine list"):
        count += 1
        if args.json:
            report.json_line(report.found_json(item), out)
        else:
            out.write(report.found_line(item) + "\n")
    if not args.json:
        out.write(f"{count} messages from {report.timestamp(args.since)} to {report.timestamp(args.until)}\n")
    return 0


def quarantine_show(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    """One object's messages (or one of them) in full."""
    bucket = target.need("quarantine_bucket", "quarantine show")
    s3 = target.client("s3")
    try:
        data = s3.get_object(Bucket=bucket, Key=args.key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        sys.stderr.write(f"no object {args.key} in {bucket} (list them with: quarantine list)\n")
        return 1
    try:
        messages = [m for m in decode(data) if args.message_id in (None, m.message_id)]
    except (OSError, ValueError, TypeError, EOFError) as error:
        sys.stderr.write(f"{args.key} is not a quarantine object ({type(error).__name__})\n")
        return 1
    if not messages:
        sys.stderr.write(f"no message {args.message_id} in {args.key}\n")
        return 1
    for message in messages:
        item = Found(args.key, message)
        if args.raw:
            out.write(message.body + "\n")
        elif args.json:
            report.json_line({**report.found_json(item), "body": message.body}, out)
        else:
            report.show(item, inspect_body(message.body), out)
    return 0


def quarantine_replay(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    """Send quarantined bodies back to the submissions queue (the processor decides again)."""
    queue_url = target.need("queue_url", "quarantine replay")
    bucket = target.need("quarantine_bucket", "quarantine replay")
    items = list(_found(args, target, "quarantine replay"))
    if args.skip_invalid:
        items = [item for item in items if inspect_body(item.message.body).valid]
    if not args.include_replays:
        items, repeats = quarantine.one_per_original(items)
        if repeats:
            sys.stderr.write(
                f"left out {len(repeats)} messages quarantined again by an earlier replay of a message also "
                "chosen (each original is sent once); --include-replays sends them too\n"
            )
    if not args.force:
        items, conflicts = quarantine.without_conflicts(items)
        if conflicts:
            sys.stderr.write(
                f"left out {len(conflicts)} conflicting_duplicate messages: their submission id was published with "
                "other content, and once the ledger forgets it a replay would publish a second content under the "
                "same ids; --force sends them anyway\n"
            )
    for item in items:
        line = f"{report.found_line(item)}  decoder now: {report.verdict(inspect_body(item.message.body))}"
        out.write(("would send " if args.dry_run else "sending ") + line + "\n")
    if args.dry_run:
        out.write(f"dry run: would send {len(items)} messages to {queue_url} at {args.rate:g} per second\n")
        return 0
    result = quarantine.replay(target.client("sqs"), queue_url, bucket, items, pacer=Pacer(args.rate))
    out.write(f"sent {result.sent} messages to {queue_url}\n")
    for reference in result.without_attributes:
        sys.stderr.write(f"sent without some Replayed* attributes (no room under SQS's 1 MiB): {reference}\n")
    for reference, code in sorted(result.failed.items()):
        sys.stderr.write(f"not sent: {reference}: {code}\n")
    return 1 if result.failed else 0


def submission(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    """What the ledger knows of one submission."""
    answer = stack_functions(target, sys.stderr if args.verbose else None).submission(args.submission_id)
    if args.json:
        report.json_line(answer, out)
    if "error" in answer:
        sys.stderr.write(f"the stack could not answer: {answer['error']}: {answer.get('message', '')}\n")
        return 1
    if not answer.get("found"):
        if not args.json:
            out.write(
                f"{args.submission_id} is not in the ledger: never received, rejected before the ledger (look in "
                "the quarantine: quarantine list --submission ...), or deleted after the ledger's retention\n"
            )
        return 1
    if not args.json:
        ledger: dict[str, Any] = answer["ledger"]
        out.write(f"submission      {answer['submission_id']}\n")
        for name, value in ledger.items():
            out.write(f"{name.replace('_', ' '):<15} {value if value is not None else '-'}\n")
    return 0
