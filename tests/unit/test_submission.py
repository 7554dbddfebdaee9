"""Decoding and validation, table-driven: one case per reason code and per known sensor defect."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from devkit import fleet
from telemetry_adapter.config import Limits
from telemetry_adapter.rejections import Reason, Rejected
from telemetry_adapter.submission import parse_submission

LIMITS = Limits()
VALID: dict[str, Any] = {
    "submission_id": "5D9F1C2E-8A3B-4C1D-9E2F-0A1B2C3D4E5F",
    "device_id": "154ef306-c788-4934-9489-118173e4ea1a",
    "time_created": "2024-03-05T03:49:51.123456",
    "events": {
        "new_process": [{"cmdl": "notepad.exe", "user": "john"}],
        "network_connection": [
            {"source_ip": "192.168.0.1", "destination_ip": "142.250.74.110", "destination_port": 443}
        ],
    },
}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def body_with(**changes: Any) -> str:
    """VALID with top-level fields replaced (a value of ... deletes the field)."""
    document = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is ...:
            del document[key]
        else:
            document[key] = value
    return fleet.encode(document)


def with_event(event_type: str, event: Any) -> str:
    return body_with(events={event_type: [event]})


def _raw_variant(event_type: str, event_json: str) -> str:
    """VALID with one event written as raw JSON text (for what json.dumps cannot produce)."""
    document = json.dumps({**VALID, "events": {event_type: ["PLACEHOLDER"]}})
    return b64(document.replace('"PLACEHOLDER"', event_json).encode())


def network(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"source_ip": "10.0.0.1", "destination_ip": "8.8.8.8", "destination_port": 53}
    event.update(changes)
    return {key: value for key, value in event.items() if value is not ...}


REJECTIONS: list[tuple[str, Any, Reason]] = [
    # the body itself
    ("not base64", "%%%not base64%%%", Reason.NOT_BASE64),
    ("base64 with bad padding", "abc", Reason.NOT_BASE64),
    ("body not a string", 12345, Reason.NOT_BASE64),
    ("not utf-8", b64(b"\xff\xfe{}"), Reason.NOT_UTF8),
    ("not json", b64(b"{oops"), Reason.NOT_JSON),
    ("raw body not json", '{"submission_id": ', Reason.NOT_JSON),
    ("NaN literal", b64(b'{"x": NaN}'), Reason.NOT_JSON),
    ("integer past the digit limit", b64(b'{"x": ' + b"9" * 5000 + b"}"), Reason.NOT_JSON),
    ("json array", b64(b"[1, 2]"), Reason.NOT_AN_OBJECT),
    ("json string", b64(b'"hello"'), Reason.NOT_AN_OBJECT),
    ("too large base64", b64(b" " * (LIMITS.max_body_bytes + 10)), Reason.TOO_LARGE),
    ("too large raw", "{" + " " * LIMITS.max_body_bytes + "}", Reason.TOO_LARGE),
    ("deeper than the parser", b64(b"[" * 200_000 + b"]" * 200_000), Reason.TOO_DEEP),
    ("nested deep in an object", b64(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), Reason.TOO_DEEP),
    ("nested past the limit", b64(b'{"a":' + b"[" * 40 + b"]" * 40 + b"}"), Reason.TOO_DEEP),
    # required fields
    ("missing submission_id", body_with(submission_id=...), Reason.MISSING_FIELD),
    ("missing device_id", body_with(device_id=...), Reason.MISSING_FIELD),
    ("missing time_created", body_with(time_created=...), Reason.MISSING_FIELD),
    ("missing events", body_with(events=...), Reason.MISSING_FIELD),
    ("missing cmdl", with_event("new_process", {"user": "john"}), Reason.MISSING_FIELD),
    ("missing port", with_event("network_connection", network(destination_port=...)), Reason.MISSING_FIELD),
    # ids
    ("sensor defect: id not a uuid", body_with(submission_id="not-a-uuid"), Reason.INVALID_UUID),
    ("uuid without hyphens", body_with(device_id="154ef306c78849349489118173e4ea1a"), Reason.INVALID_UUID),
    ("uuid as a number", body_with(device_id=42), Reason.INVALID_UUID),
    ("uuid in braces", body_with(device_id="{154ef306-c788-4934-9489-118173e4ea1a}"), Reason.INVALID_UUID),
    # time
    ("timestamp not a date", body_with(time_created="yesterday"), Reason.INVALID_TIMESTAMP),
    ("date without a time", body_with(time_created="2024-03-05"), Reason.INVALID_TIMESTAMP),
    ("timestamp out of range", body_with(time_created="2024-13-45T99:99:99"), Reason.INVALID_TIMESTAMP),
    ("timestamp as epoch", body_with(time_created=1709610591), Reason.INVALID_TIMESTAMP),
    # event containers
    ("events is a list", body_with(events=[]), Reason.INVALID_EVENTS),
    ("event list is an object", body_with(events={"new_process": {"cmdl": "x"}}), Reason.INVALID_EVENTS),
    ("event is a string", body_with(events={"new_process": ["notepad.exe"]}), Reason.INVALID_EVENTS),
    ("unknown event type", body_with(events={"file_write": []}), Reason.UNKNOWN_EVENT_TYPE),
    # strings
    ("sensor defect: cmdl null", with_event("new_process", {"cmdl": None, "user": "john"}), Reason.INVALID_STRING),
    ("cmdl empty", with_event("new_process", {"cmdl": "", "user": "john"}), Reason.INVALID_STRING),
    ("cmdl blank", with_event("new_process", {"cmdl": "   ", "user": "john"}), Reason.INVALID_STRING),
    ("user not a string", with_event("new_process", {"cmdl": "a", "user": ["john"]}), Reason.INVALID_STRING),
    ("cmdl too long", with_event("new_process", {"cmdl": "x" * 40_000, "user": "j"}), Reason.INVALID_STRING),
    ("user too long", with_event("new_process", {"cmdl": "x", "user": "j" * 2_000}), Reason.INVALID_STRING),
    ("control character", with_event("new_process", {"cmdl": "a\x00b", "user": "j"}), Reason.INVALID_STRING),
    ("unpaired surrogate", _raw_variant("new_process", '{"cmdl": "a\\ud800b", "user": "j"}'), Reason.INVALID_STRING),
    # ips
    ("sensor defect: not-an-ip", with_event("network_connection", network(source_ip="not-an-ip")), Reason.INVALID_IP),
    ("ipv4 out of range", with_event("network_connection", network(destination_ip="256.1.1.1")), Reason.INVALID_IP),
    ("ipv4 leading zero", with_event("network_connection", network(destination_ip="010.1.1.1")), Reason.INVALID_IP),
    ("ip as a number", with_event("network_connection", network(source_ip=167772161)), Reason.INVALID_IP),
    ("ip is null", with_event("network_connection", network(source_ip=None)), Reason.INVALID_IP),
    ("scoped ipv6", with_event("network_connection", network(source_ip="fe80::1%eth0")), Reason.INVALID_IP),
    (
        "scoped ipv6 with a lone surrogate",
        _raw_variant(
            "network_connection",
            '{"source_ip": "fe80::1%\\ud800", "destination_ip": "::1", "destination_port": 1}',
        ),
        Reason.INVALID_IP,
    ),
    (
        "ipv6 scope holding a NUL",
        with_event("network_connection", network(destination_ip="::1%\x00")),
        Reason.INVALID_IP,
    ),
    # ports
    ("port too high", with_event("network_connection", network(destination_port=65_536)), Reason.INVALID_PORT),
    ("port negative", with_event("network_connection", network(destination_port=-1)), Reason.INVALID_PORT),
    ("port true", with_event("network_connection", network(destination_port=True)), Reason.INVALID_PORT),
    ("port 443.0", with_event("network_connection", network(destination_port=443.0)), Reason.INVALID_PORT),
    ("port string", with_event("network_connection", network(destination_port="443")), Reason.INVALID_PORT),
    (
        "port 1e400",
        _raw_variant(
            "network_connection", '{"source_ip": "10.0.0.1", "destination_ip": "::1", "destination_port": 1e400}'
        ),
        Reason.INVALID_PORT,
    ),
]


@pytest.mark.parametrize(
    ("body", "reason"), [(body, reason) for _, body, reason in REJECTIONS], ids=[name for name, _, _ in REJECTIONS]
)
def test_rejected_with_reason(body: Any, reason: Reason) -> None:
    with pytest.raises(Rejected) as caught:
        parse_submission(body, LIMITS)
    assert caught.value.reason is reason


def test_every_reason_code_has_a_case() -> None:
    covered = {reason for _, _, reason in REJECTIONS}
    # conflicting_duplicate needs the ledger; too_many_events a small limit: both tested below.
    assert set(Reason) - covered == {Reason.CONFLICTING_DUPLICATE, Reason.TOO_MANY_EVENTS}


def test_too_many_events() -> None:
    events = {"new_process": [{"cmdl": "a", "user": "b"}] * 3, "network_connection": [network()] * 3}
    with pytest.raises(Rejected) as caught:
        parse_submission(body_with(events=events), Limits(max_events=5))
    assert caught.value.reason is Reason.TOO_MANY_EVENTS
    assert len(parse_submission(body_with(events=events), Limits(max_events=6)).events) == 6


def test_valid_submission_is_normalised() -> None:
    submission = parse_submission(fleet.encode(VALID), LIMITS)
    assert submission.submission_id == "5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"
    assert submission.device_id == "154ef306-c788-4934-9489-118173e4ea1a"
    assert submission.time_created == "2024-03-05T03:49:51.123456"
    assert [(kind, json.loads(details)) for kind, details in submission.events] == [
        ("new_process", {"cmdl": "notepad.exe", "user": "john"}),
        (
            "network_connection",
            {"source_ip": "192.168.0.1", "destination_ip": "142.250.74.110", "destination_port": 443},
        ),
    ]


def test_raw_json_body_is_accepted_like_base64() -> None:
    raw = "  \n" + json.dumps(VALID)
    assert parse_submission(raw, LIMITS) == parse_submission(fleet.encode(VALID), LIMITS)


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("source_ip", "2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("destination_ip", "::ffff:10.0.0.1", "::ffff:a00:1"),
        ("destination_port", 0, 0),
        ("destination_port", 65_535, 65_535),
    ],
)
def test_network_fields_are_canonical(field: str, given: Any, expected: Any) -> None:
    submission = parse_submission(with_event("network_connection", network(**{field: given})), LIMITS)
    assert json.loads(submission.events[0][1])[field] == expected


def test_sensor_port_zero_is_valid() -> None:
    document = copy.deepcopy(VALID)
    document["events"]["network_connection"][0]["destination_port"] = 0
    assert json.loads(parse_submission(fleet.encode(document), LIMITS).events[1][1])["destination_port"] == 0


@pytest.mark.parametrize("defect", fleet.DEFECTS)
def test_known_sensor_defects_are_rejected(defect: str) -> None:
    with pytest.raises(Rejected):
        parse_submission(fleet.encode(fleet.with_defect(VALID, defect)), LIMITS)


@pytest.mark.parametrize("kind", fleet.HOSTILE)
def test_hostile_bodies_are_rejected(kind: str) -> None:
    with pytest.raises(Rejected):
        parse_submission(fleet.hostile_body(kind), LIMITS)


def test_zero_events_is_valid_and_empty() -> None:
    empties: list[dict[str, Any]] = [{}, {"new_process": []}, {"new_process": None, "network_connection": []}]
    for events in empties:
        assert parse_submission(body_with(events=events), LIMITS).events == ()


def test_unknown_fields_are_ignored() -> None:
    document = copy.deepcopy(VALID)
    document["firmware"] = {"version": [1, 2, 3]}
    document["events"]["new_process"][0]["pid"] = 4242
    submission = parse_submission(fleet.encode(document), LIMITS)
    assert json.loads(submission.events[0][1]) == {"cmdl": "notepad.exe", "user": "john"}
    assert submission.digest == parse_submission(fleet.encode(VALID), LIMITS).digest


def test_sequence_follows_document_key_order() -> None:
    document = copy.deepcopy(VALID)
    document["events"] = {
        "network_connection": document["events"]["network_connection"],
        "new_process": document["events"]["new_process"],
    }
    kinds = [kind for kind, _ in parse_submission(fleet.encode(document), LIMITS).events]
    assert kinds == ["network_connection", "new_process"]


def test_offset_is_kept_when_present() -> None:
    assert parse_submission(body_with(time_created="2024-03-05T03:49:51Z"), LIMITS).time_created == (
        "2024-03-05T03:49:51+00:00"
    )
    assert parse_submission(body_with(time_created="2024-03-05 03:49:51+02:00"), LIMITS).time_created == (
        "2024-03-05T03:49:51+02:00"
    )


def test_digest_depends_on_content_not_encoding() -> None:
    lower = copy.deepcopy(VALID)
    lower["submission_id"] = lower["submission_id"].lower()
    same = parse_submission(json.dumps(lower, indent=2), LIMITS).digest
    assert same == parse_submission(fleet.encode(VALID), LIMITS).digest
    changed = copy.deepcopy(VALID)
    changed["events"]["new_process"][0]["user"] = "mallory"
    assert parse_submission(fleet.encode(changed), LIMITS).digest != same


def test_control_characters_tab_and_newline_are_allowed_in_cmdl() -> None:
    submission = parse_submission(with_event("new_process", {"cmdl": "a\tb\nc", "user": "j"}), LIMITS)
    assert json.loads(submission.events[0][1])["cmdl"] == "a\tb\nc"
