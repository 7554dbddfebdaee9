"""Canonical text of the values that content digests and output records are made of.

A submission's digest is kept in the ledger for as long as its row lives, and compared with every
later copy: if the text of a value changed between two versions of the runtime, an unfinished
submission would stop matching its own row and be dropped as a conflicting duplicate. So the text of
every normalised value is written here, by this module, never by an interpreter's ``str()`` of a
standard-library object (Python 3.13, for one, prints IPv4-mapped IPv6 addresses differently from
3.11 and 3.12). Parsing stays with the standard library; a golden corpus in the tests pins the output.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from ipaddress import IPv4Address, IPv6Address

_IPV6_GROUPS = 8


def ip_text(address: IPv4Address | IPv6Address) -> str:
    """IPv4 in dotted decimal; IPv6 as RFC 5952 hex groups (lower case, no leading zeros, the longest
    run of two or more zero groups, the first on a tie, written ``::``).

    IPv4-mapped and other embedded IPv4 forms stay in hex groups (``::ffff:102:304``), which is what
    the adapter has always written, so digests recorded by earlier releases still match.
    """
    value = int(address)
    if isinstance(address, IPv4Address):
        return ".".join(str(part) for part in value.to_bytes(4, "big"))
    groups = [(value >> (16 * (_IPV6_GROUPS - 1 - index))) & 0xFFFF for index in range(_IPV6_GROUPS)]
    start, length = _longest_zero_run(groups)
    hexes = [f"{group:x}" for group in groups]
    if length < 2:
        return ":".join(hexes)
    return ":".join(hexes[:start]) + "::" + ":".join(hexes[start + length :])


def _longest_zero_run(groups: list[int]) -> tuple[int, int]:
    """Start and length of the first longest run of zero groups (length 0 when there is none)."""
    best_start, best_length = 0, 0
    run_start, run_length = 0, 0
    for index, group in enumerate(groups):
        if group == 0:
            if run_length == 0:
                run_start = index
            run_length += 1
            if run_length > best_length:
                best_start, best_length = run_start, run_length
        else:
            run_length = 0
    return best_start, best_length


def timestamp_text(moment: datetime) -> str:
    """ISO 8601: ``YYYY-MM-DDTHH:MM:SS``, ``.ffffff`` when there are microseconds, and the offset
    (``+HH:MM``, with ``:SS`` and ``.ffffff`` only when not whole minutes) when the value has one."""
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    offset = moment.utcoffset()
    return text if offset is None else text + _offset_text(offset)


def _offset_text(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    microseconds = abs(offset) // timedelta(microseconds=1)
    seconds, micro = divmod(microseconds, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    if seconds or micro:
        text += f":{seconds:02d}"
    if micro:
        text += f".{micro:06d}"
    return text


def utc_timestamp_text(moment: datetime) -> str:
    """A UTC instant with microseconds and a ``Z`` suffix (``2026-11-28T12:22:05.123456Z``)."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )
