"""Property-based: no input makes the decoder raise anything but a rejection."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry_adapter.config import Limits
from telemetry_adapter.records import build_records
from telemetry_adapter.rejections import Rejected
from telemetry_adapter.submission import Submission, parse_submission

LIMITS = Limits(max_depth=8, max_events=50)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
# Any string field may carry what breaks encoders and parsers: lone surrogates (JSON "\ud800" decodes
# to one), NULs and "%" (the IPv6 scope separator), among any other code point.
# (st.text drops surrogates from any alphabet, so hostile text is joined from single characters.)
hostile_characters = st.sampled_from(["\ud800", "\udfff", "\x00", "%"]) | st.characters(exclude_categories=())
hostile_text = st.lists(hostile_characters, max_size=30).map("".join)
uuids = st.uuids().map(str) | st.text(max_size=40) | hostile_text
scoped_ips = st.tuples(st.ip_addresses(v=6).map(str), hostile_text).map("%".join)
ips = st.ip_addresses().map(str) | st.text(max_size=20) | st.integers() | scoped_ips | hostile_text
ports = st.integers(min_value=-5, max_value=70_000) | st.booleans() | st.floats() | st.text(max_size=6) | st.none()
strings = st.text(max_size=30) | st.none() | st.integers() | hostile_text
new_process = st.fixed_dictionaries({}, optional={"cmdl": strings, "user": strings, "extra": json_values})
network = st.fixed_dictionaries(
    {}, optional={"source_ip": ips, "destination_ip": ips, "destination_port": ports, "extra": json_values}
)
events = st.dictionaries(
    st.sampled_from(["new_process", "network_connection", "file_write"]),
    st.lists(new_process | network | json_values, max_size=5) | json_values,
    max_size=3,
)
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "submission_id": uuids,
        "device_id": uuids,
        "time_created": st.datetimes().map(lambda moment: moment.isoformat()) | st.text(max_size=30) | hostile_text,
        "events": events | json_values,
        "noise": json_values,
    },
)


def outcome(body: Any) -> Submission | Rejected:
    try:
        return parse_submission(body, LIMITS)
    except Rejected as rejection:
        return rejection


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_arbitrary_bytes_as_base64(raw: bytes) -> None:
    assert isinstance(outcome(base64.b64encode(raw).decode()), Submission | Rejected)


@settings(max_examples=400)
@given(st.text(max_size=512))
def test_arbitrary_text_bodies(text: str) -> None:
    assert isinstance(outcome(text), Submission | Rejected)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid, st.booleans())
def test_near_valid_documents(document: dict[str, Any], raw: bool) -> None:
    text = json.dumps(document)
    result = outcome(text if raw else base64.b64encode(text.encode()).decode())
    assert isinstance(result, Submission | Rejected)
    if isinstance(result, Submission):
        # Whatever passes is fully normalised: each event's details re-parse and re-encode as UTF-8,
        # and its records build (the digest was computed on the way).
        for _, details in result.events:
            json.loads(details)
            details.encode("utf-8")
        assert result.submission_id == result.submission_id.lower()
        for record in build_records(result, 0, "2026-11-28T12:22:05.123456Z"):
            json.loads(record.data)


valid_ids = st.uuids().map(str)
network_events = st.fixed_dictionaries(
    {"source_ip": ips, "destination_ip": ips, "destination_port": st.integers(min_value=0, max_value=65_535)}
)
process_events = st.fixed_dictionaries({"cmdl": strings, "user": strings})


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(valid_ids, valid_ids, st.lists(network_events, max_size=3), st.lists(process_events, max_size=3))
def test_hostile_values_in_otherwise_valid_submissions(
    submission_id: str, device_id: str, connections: list[dict[str, Any]], processes: list[dict[str, Any]]
) -> None:
    """Every field but one valid, so a hostile value reaches the deepest checks (and the digest)."""
    document = {
        "submission_id": submission_id,
        "device_id": device_id,
        "time_created": "2024-03-05T03:49:51",
        "events": {"network_connection": connections, "new_process": processes},
    }
    result = outcome(base64.b64encode(json.dumps(document).encode()).decode())
    assert isinstance(result, Submission | Rejected)
    if isinstance(result, Submission):
        for record in build_records(result, 0, "2026-11-28T12:22:05.123456Z"):
            json.loads(record.data)
