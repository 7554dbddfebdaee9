"""Argument types of the operators' tool, checked when the flags are parsed (with devkit's numbers).

Each raises ``ArgumentTypeError`` with a sentence a person can act on, which argparse prints as
``argument --since: ...`` with the usage line and exit status 2.
"""

from __future__ import annotations

import argparse
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from telemetry_adapter.rejections import Reason

_RELATIVE = re.compile(r"(\d{1,6})\s*([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def moment(now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Callable[[str], datetime]:
    """A point in time: ISO 8601 (``2026-11-29``, ``2026-11-29T03:00``, with ``Z`` or an offset; no offset
    means UTC), or a duration before now (``90m``, ``24h``, ``7d``)."""

    def parse(text: str) -> datetime:
        relative = _RELATIVE.fullmatch(text.strip().lower())
        if relative:
            try:
                return now() - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
            except OverflowError:
                raise argparse.ArgumentTypeError(f"{text.strip()} before now is before the year 1") from None
        try:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a time such as 2026-11-29T03:00Z, 2026-11-29, or a duration before now such as "
                f"90m, 24h, 7d; got {text!r}"
            ) from None
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        try:  # comparable with the others, in UTC: a time whose UTC falls outside years 1 to 9999 is not
            return moment.astimezone(UTC)
        except OverflowError:
            raise argparse.ArgumentTypeError(f"expected a time from year 1 to year 9999 in UTC, got {text!r}") from None

    parse.__name__ = "time"
    return parse


def submission_id(text: str) -> str:
    """A UUID, normalised to lower-case canonical form (the ledger's)."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a UUID such as 5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f, got {text!r}"
        ) from None


submission_id.__name__ = "UUID"


def reason(text: str) -> str:
    """One of the documented rejection reason codes."""
    codes = [code.value for code in Reason]
    if text.strip() not in codes:
        raise argparse.ArgumentTypeError(f"expected a reason code ({', '.join(codes)}), got {text!r}")
    return text.strip()


reason.__name__ = "reason code"


def non_empty(what: str) -> Callable[[str], str]:
    """A non-blank string (a URL, a name)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got an empty value")
        return text.strip()

    parse.__name__ = what
    return parse
