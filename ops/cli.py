"""The command line: ``python -m ops <group> <verb> [flags]`` (``make ops ARGS='...'``).

Every verb takes the target flags (``--stack NAME``, ``--local``, or endpoints one by one, see
:mod:`ops.target`) and has its own ``--help``. Exit status: 0 done, 1 refused, not found or partly
failed (the reason on stderr), 2 a usage error or a target that cannot be found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from devkit.cli_flags import HelpFormatter, integer, number
from ops import commands
from ops.flags import moment, reason, submission_id
from ops.functions import OperationError
from ops.target import TargetError, add_target_flags, resolve

PROG = "make ops ARGS='...'  (or python -m ops)"
DEFAULT_RATE = 10.0
MAX_RATE = 1_000.0


def _verb(
    group: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=summary, description=description, formatter_class=HelpFormatter)
    add_target_flags(parser)
    return parser


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")


def _rate_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--rate", type=number(0.1, MAX_RATE), default=DEFAULT_RATE, help=f"{what} per second, at most")


def _filter_flags(parser: argparse.ArgumentParser, *, limit: int) -> None:
    window = parser.add_argument_group("which messages")
    window.add_argument(
        "--since",
        type=moment(),
        default=None,
        help="from this time (2026-11-29T03:00Z, 2026-11-29, or 90m, 24h, 7d before now) [default: 24h]",
    )
    window.add_argument("--until", type=moment(), default=None, help="up to this time [default: now]")
    window.add_argument("--reason", type=reason, action="append", help="this rejection reason (repeatable)")
    window.add_argument("--device", type=submission_id, action="append", help="this device id (repeatable)")
    window.add_argument("--submission", type=submission_id, action="append", help="this submission id (repeatable)")
    window.add_argument(
        "--limit", type=integer(1, 1_000_000), default=limit, help="at most this many messages, oldest first"
    )


def build_parser() -> argparse.ArgumentParser:
    """Every group, verb and flag (``--help`` at each level)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="The operators' tool: the dead-letter queue, the quarantine of rejected messages, and what "
        "the ledger knows of a submission, for a deployed stack (--stack NAME) or a running make run (--local).",
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="{dlq,quarantine,submission}")

    dead = groups.add_parser("dlq", help="the dead-letter queue: peek, redrive", description="The dead-letter queue.")
    dead_verbs = dead.add_subparsers(dest="verb", required=True, metavar="{peek,redrive}")
    peek = _verb(
        dead_verbs,
        "peek",
        "show waiting messages, decoded; deletes nothing",
        "Show the messages waiting in the dead-letter queue: submission and device ids, what the decoder makes "
        "of each, receive counts, age and time left before SQS deletes them (counted from the original send). "
        "Nothing is deleted; each message is visible again as soon as it is read.",
    )
    peek.add_argument("--limit", type=integer(1, 10_000), default=20, help="at most this many messages")
    peek.add_argument(
        "--bodies", action="store_true", help="print each decoded body too (with --json: each body as received)"
    )
    _json_flag(peek)
    peek.set_defaults(run=commands.dlq_peek)

    redrive = _verb(
        dead_verbs,
        "redrive",
        "move messages back to the submissions queue, paced",
        "Move dead-lettered messages back to the submissions queue at a chosen rate: each is deleted from the "
        "dead-letter queue only once its copy is in the queue. Refused while the stack's health answer is "
        "failing or reports an open circuit breaker (the messages would only fail again), unless --force.",
    )
    _rate_flag(redrive, "messages moved")
    redrive.add_argument(
        "--limit", type=integer(1, 1_000_000), default=None, help="at most this many [default: what waits at the start]"
    )
    redrive.add_argument("--dry-run", action="store_true", help="show what would move; move nothing")
    redrive.add_argument(
        "--force",
        action="store_true",
        help="redrive even if the stack's health is failing or a circuit breaker is open",
    )
    redrive.set_defaults(run=commands.dlq_redrive)

    kept = groups.add_parser(
        "quarantine", help="rejected messages: list, show, replay", description="The quarantine of rejected messages."
    )
    kept_verbs = kept.add_subparsers(dest="verb", required=True, metavar="{list,show,replay}")
    listing = _verb(
        kept_verbs,
        "list",
        "list quarantined messages",
        "List quarantined messages by time, reason, device or submission, oldest first, one line each "
        "(with the object key and message id that show and replay take).",
    )
    _filter_flags(listing, limit=100)
    _json_flag(listing)
    listing.set_defaults(run=commands.quarantine_list)

    showing = _verb(
        kept_verbs,
        "show",
        "show one quarantined message, body decoded",
        "Show the messages of one quarantine object (or one of them): why it was rejected, where it came from, "
        "what this version's decoder makes of it now, and its body, decoded when it can be.",
    )
    showing.add_argument("key", help="the object key, as quarantine list prints it")
    showing.add_argument("message_id", nargs="?", default=None, help="one message of the object [default: all]")
    showing.add_argument("--raw", action="store_true", help="print only the body, exactly as it was received")
    _json_flag(showing)
    showing.set_defaults(run=commands.quarantine_show)

    replaying = _verb(
        kept_verbs,
        "replay",
        "send quarantined bodies back to the queue",
        "Send quarantined bodies, unchanged, back to the submissions queue (attributes ReplayedFrom and "
        "ReplayedMessageId say where from), paced, each originally rejected message once. The processor "
        "decides again: a body it now accepts is published once however often it is replayed; one it still "
        "rejects is quarantined again.",
    )
    _filter_flags(replaying, limit=1_000)
    replaying.add_argument("--key", action="append", help="only messages of this object (repeatable)")
    replaying.add_argument("--message-id", action="append", help="only this message (repeatable)")
    replaying.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out bodies this version's decoder still rejects (the deployed processor may differ)",
    )
    replaying.add_argument(
        "--include-replays",
        action="store_true",
        help="send every chosen record; by default a record an earlier replay quarantined again is left out "
        "when another record of the same original message is chosen (each original is sent once)",
    )
    replaying.add_argument(
        "--force",
        action="store_true",
        help="send conflicting_duplicate bodies too: left out by default, since their submission id was "
        "published with other content, and once the ledger's retention has passed a replay would publish "
        "a second, different content under the same submission and event ids",
    )
    _rate_flag(replaying, "messages sent")
    replaying.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    replaying.set_defaults(run=commands.quarantine_replay)

    lookup = _verb(
        groups,
        "submission",
        "what the ledger knows of one submission",
        "What the ledger knows of one submission: device, event count, published prefix, completion, lease "
        "holder and expiry, first seen. A deployed stack answers through its health function (Lambda Invoke, "
        "read-only); a local one from its database.",
    )
    lookup.add_argument("submission_id", type=submission_id, help="the submission id (a UUID)")
    _json_flag(lookup)
    lookup.add_argument(
        "--verbose",
        action="store_true",
        help="with --local, also print the health function's own log lines (JSON) on stderr",
    )
    lookup.set_defaults(run=commands.submission)
    return parser


def parse(argv: Sequence[str] | None, now: datetime | None = None) -> argparse.Namespace:
    """Parse and complete the flags (time range defaults); a usage error exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "since"):
        moment_now = now or datetime.now(UTC)
        args.until = args.until or moment_now
        if args.since is None:
            try:
                args.since = args.until - timedelta(hours=24)
            except OverflowError:
                parser.error(f"--until ({_shown(args.until)}) leaves no room for the default --since: name one")
        if args.since > args.until:
            parser.error(f"--since ({_shown(args.since)}) is after --until ({_shown(args.until)})")
    return args


def _shown(moment: datetime) -> str:
    """A moment in UTC to the minute, with ``Z`` (year 1 as 0001: ``strftime`` would print 1)."""
    return moment.astimezone(UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run one verb; return the exit status."""
    args = parse(argv)
    output = out or sys.stdout
    try:
        target = resolve(args)
        status: int = args.run(args, target, output)
    except TargetError as error:
        sys.stderr.write(f"ops: {error}\n")
        return 2
    except OperationError as error:
        sys.stderr.write(f"ops: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("ops: interrupted\n")
        return 130
    except Exception as error:  # an AWS or database error: said in one line, not a traceback
        if type(error).__module__.startswith(("botocore", "boto3", "pg8000", "urllib3")):
            sys.stderr.write(f"ops: {_aws_message(error)}\n")
            return 1
        raise
    return status


def _aws_message(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        details = response["Error"]
        return f"{details.get('Code', type(error).__name__)}: {details.get('Message', '')}"
    return f"{type(error).__name__}: {error}"
