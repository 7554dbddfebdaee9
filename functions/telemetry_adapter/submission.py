"""Decoding and validation of one submission: an SQS message body in, a :class:`Submission` out.

Pure functions, no I/O. Every way a body can be wrong ends in :class:`~.rejections.Rejected` with a
reason code; nothing else escapes (a property-based test holds us to that). Hostile bodies cost time
linear in their size and memory bounded by the body-size limit: the size is checked before anything
is decoded, the JSON parser is the standard library's C scanner, and nesting depth is bounded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring as _json_string
from typing import Any

from telemetry_adapter.canonical import ip_text, timestamp_text
from telemetry_adapter.config import Limits
from telemetry_adapter.rejections import Reason, Rejected

NEW_PROCESS = "new_process"
NETWORK_CONNECTION = "network_connection"
EVENT_TYPES = (NEW_PROCESS, NETWORK_CONNECTION)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# C0 controls except TAB, LF and CR, DEL, and unpaired surrogates (JSON "\ud800" decodes to one, and it
# cannot be encoded as UTF-8 on the way out).
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_MAX_TIMESTAMP_CHARS = 64
_MAX_IP_CHARS = 64
_MAX_PORT = 65_535


@dataclass(frozen=True, slots=True)
class Submission:
    """A validated submission, normalised: lower-case UUIDs, canonical IPs, events in document order.

    ``events`` holds ``(event_type, details_json)`` pairs: the details are serialised once, here, and
    reused both for the content digest and for every Kinesis record built from them.
    """

    submission_id: str
    device_id: str
    time_created: str
    events: tuple[tuple[str, str], ...]
    digest: bytes
    """SHA-256 of the normalised content. The same id with another digest is a conflicting duplicate."""


def decode_body(body: object, limits: Limits) -> dict[str, Any]:
    """Turn an SQS message body into a JSON object.

    The body is base64 of UTF-8 JSON (what sensors send) or, when it starts with ``{`` after optional
    whitespace, the JSON text itself.
    """
    if not isinstance(body, str):
        raise Rejected(Reason.NOT_BASE64, "body is not a string")
    stripped = body.lstrip()
    if stripped.startswith("{"):
        if len(stripped) > limits.max_body_bytes:  # chars <= bytes, so this check is safe and O(1)
            raise Rejected(Reason.TOO_LARGE, "body")
        try:
            raw = stripped.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected(Reason.NOT_UTF8, "body") from None
    else:
        if len(body) > (limits.max_body_bytes + 2) // 3 * 4 + 4:
            raise Rejected(Reason.TOO_LARGE, "body")
        try:
            raw = base64.b64decode(body.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(Reason.NOT_BASE64, "body") from None
    if len(raw) > limits.max_body_bytes:
        raise Rejected(Reason.TOO_LARGE, "body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Reason.NOT_UTF8, "body") from None
    try:
        document = _DECODER.decode(text)
    except RecursionError:
        raise Rejected(Reason.TOO_DEEP, "document") from None
    except ValueError:  # JSONDecodeError, NaN/Infinity, integers past the digit limit
        raise Rejected(Reason.NOT_JSON, "body") from None
    if not isinstance(document, dict):
        raise Rejected(Reason.NOT_AN_OBJECT, "document")
    # A document cannot nest deeper than it has brackets, so the walk only runs for the few bodies
    # that could possibly exceed the limit.
    if text.count("{") + text.count("[") > limits.max_depth and _deeper_than(document, limits.max_depth):
        raise Rejected(Reason.TOO_DEEP, "document")
    return document


def parse_submission(body: object, limits: Limits) -> Submission:
    """Decode and validate one message body; raise Rejected with the first reason found."""
    return validate_document(decode_body(body, limits), limits)


def validate_document(document: dict[str, Any], limits: Limits) -> Submission:
    """Validate a decoded JSON object against the input contract. Unknown fields are ignored."""
    submission_id = _uuid(document, "submission_id")
    device_id = _uuid(document, "device_id")
    time_created = _timestamp(document)
    events_by_type = _field(document, "events")
    if not isinstance(events_by_type, dict):
        raise Rejected(Reason.INVALID_EVENTS, "events")
    lists: list[tuple[str, list[Any]]] = []
    total = 0
    for event_type, items in events_by_type.items():
        if event_type not in EVENT_TYPES:
            raise Rejected(Reason.UNKNOWN_EVENT_TYPE, "events")
        if items is None:
            continue
        if not isinstance(items, list):
            raise Rejected(Reason.INVALID_EVENTS, event_type)
        total += len(items)
        lists.append((event_type, items))
    if total > limits.max_events:
        raise Rejected(Reason.TOO_MANY_EVENTS, "events")

    digest = hashlib.sha256(f"{device_id}\n{time_created}\n".encode())
    events: list[tuple[str, str]] = []
    for event_type, items in lists:
        details_of = _DETAILS_BUILDERS[event_type]
        for item in items:
            if not isinstance(item, dict):
                raise Rejected(Reason.INVALID_EVENTS, event_type)
            details = details_of(item, limits)
            digest.update(f"{event_type}\t{details}\n".encode())
            events.append((event_type, details))
    return Submission(submission_id, device_id, time_created, tuple(events), digest.digest())


# The details JSON is written directly, with the C string escaper json.dumps(ensure_ascii=False) uses
# itself: the output is byte for byte what json.dumps(details, ensure_ascii=False, separators=(",", ":"))
# gives (a unit test holds it to that), at a third of the cost of building a dict and an encoder.


def _new_process_details(event: dict[str, Any], limits: Limits) -> str:
    cmdl = _string(event, "cmdl", limits.max_cmdl_chars)
    user = _string(event, "user", limits.max_string_chars)
    return f'{{"cmdl":{_json_string(cmdl)},"user":{_json_string(user)}}}'


def _network_connection_details(event: dict[str, Any], limits: Limits) -> str:
    port = _field(event, "destination_port")
    # bool is an int subclass and 443.0 / "443" are not integers: only an exact int is a port.
    if type(port) is not int or not 0 <= port <= _MAX_PORT:
        raise Rejected(Reason.INVALID_PORT, "destination_port")
    source = _ip(event, "source_ip")
    destination = _ip(event, "destination_ip")
    return (
        f'{{"source_ip":{_json_string(source)},"destination_ip":{_json_string(destination)},"destination_port":{port}}}'
    )


_DETAILS_BUILDERS: dict[str, Callable[[dict[str, Any], Limits], str]] = {
    NEW_PROCESS: _new_process_details,
    NETWORK_CONNECTION: _network_connection_details,
}


def parsed_id(document: dict[str, Any], name: str) -> str | None:
    """The normalised UUID in ``document[name]``, or None when it is missing or not a UUID: what the
    log of a rejected submission can still name."""
    try:
        return _uuid(document, name)
    except Rejected:
        return None


def _field(container: dict[str, Any], name: str) -> Any:
    try:
        return container[name]
    except KeyError:
        raise Rejected(Reason.MISSING_FIELD, name) from None


def _uuid(document: dict[str, Any], name: str) -> str:
    value = _field(document, name)
    if not isinstance(value, str) or len(value) != 36 or not _UUID.fullmatch(value):
        raise Rejected(Reason.INVALID_UUID, name)
    return value.lower()


def _timestamp(document: dict[str, Any]) -> str:
    value = _field(document, "time_created")
    # fromisoformat also takes a bare date; a date-time needs its time part.
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP_CHARS or not ("T" in value or " " in value):
        raise Rejected(Reason.INVALID_TIMESTAMP, "time_created")
    try:
        return timestamp_text(datetime.fromisoformat(value))
    except ValueError:
        raise Rejected(Reason.INVALID_TIMESTAMP, "time_created") from None


def _string(event: dict[str, Any], name: str, max_chars: int) -> str:
    value = _field(event, name)
    if (
        not isinstance(value, str)
        or len(value) > max_chars
        or not value.strip()
        or _FORBIDDEN_CHARS.search(value) is not None
    ):
        raise Rejected(Reason.INVALID_STRING, name)
    return value


def _ip(event: dict[str, Any], name: str) -> str:
    value = _field(event, name)
    canonical = _canonical_ip(value) if isinstance(value, str) and len(value) <= _MAX_IP_CHARS else None
    if canonical is None:
        raise Rejected(Reason.INVALID_IP, name)
    return canonical


@lru_cache(maxsize=8192)
def _canonical_ip(text: str) -> str | None:
    """Canonical text of an IP literal, or None. Cached: a fleet talks to few addresses.

    A scoped IPv6 literal (``fe80::1%eth0``) is refused: the scope names an interface of the sensor,
    meaningless to consumers, and arbitrary text after ``%`` could carry anything (even a lone
    surrogate that no encoder accepts).
    """
    if "%" in text:
        return None
    try:
        return ip_text(ipaddress.ip_address(text))
    except ValueError:
        return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


# Built once: ``json.loads`` with any keyword argument builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether any value nests deeper than ``limit``; iterative, so hostile input cannot overflow."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values() if isinstance(child, dict | list))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node if isinstance(child, dict | list))
    return False
