"""Canonical text is the adapter's own: no interpreter's ``str()`` decides a digest or a record."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit import fleet
from telemetry_adapter.canonical import ip_text, timestamp_text, utc_timestamp_text
from telemetry_adapter.config import Limits
from telemetry_adapter.submission import parse_submission

MAPPED: dict[str, Any] = {
    "submission_id": "0f8e4a52-3c1d-4b7e-9a6f-2d5c8b1e7a90",
    "device_id": "154ef306-c788-4934-9489-118173e4ea1a",
    "time_created": "2024-03-05T03:49:51",
    "events": {
        "network_connection": [{"source_ip": "::ffff:1.2.3.4", "destination_ip": "10.0.0.1", "destination_port": 80}]
    },
}


def _printed_like_python_3_13(self: ipaddress.IPv6Address) -> str:
    """``str()`` of an IPv6 address as Python 3.13 writes it: IPv4-mapped ones in dotted form."""
    mapped = self.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{mapped}"
    return ipaddress.IPv6Address.compressed.fget(self)  # type: ignore[attr-defined,no-any-return]


def _with_source(address: str) -> str:
    event = {**MAPPED["events"]["network_connection"][0], "source_ip": address}
    return fleet.encode({**MAPPED, "events": {"network_connection": [event]}})


def test_a_runtime_that_prints_addresses_differently_changes_no_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    before = parse_submission(_with_source("::ffff:1.2.3.4"), Limits())
    monkeypatch.setattr(ipaddress.IPv6Address, "__str__", _printed_like_python_3_13)
    monkeypatch.setattr(ipaddress.IPv6Address, "compressed", property(_printed_like_python_3_13))
    assert str(ipaddress.ip_address("::ffff:1.2.3.4")) == "::ffff:1.2.3.4"  # the stand-in is in force
    # The same address spelt another way, so nothing computed before the upgrade is reused.
    after = parse_submission(_with_source("::FFFF:0102:0304"), Limits())
    assert after.digest == before.digest
    assert json.loads(after.events[0][1])["source_ip"] == "::ffff:102:304"


@settings(max_examples=500)
@given(st.ip_addresses())
def test_ip_text_is_rfc_5952_and_round_trips(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    text = ip_text(address)
    assert ipaddress.ip_address(text) == address
    assert text == text.lower()
    if isinstance(address, ipaddress.IPv4Address) or address.ipv4_mapped is None:
        # The standard library's own text, on every version, for all but IPv4-mapped addresses.
        assert text == address.compressed


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # the first of two equal runs
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # a single zero group stays
        ("2001:0DB8::0001", "2001:db8::1"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),
        ("::1.2.3.4", "::102:304"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
    ],
)
def test_ip_text_examples(given: str, expected: str) -> None:
    assert ip_text(ipaddress.ip_address(given)) == expected


offsets = st.integers(min_value=-86_399_999_999, max_value=86_399_999_999).map(
    lambda micro: timezone(timedelta(microseconds=micro))
)


@settings(max_examples=500)
@given(st.datetimes(), st.none() | offsets)
def test_timestamp_text_is_iso_8601_as_isoformat_writes_it(moment: datetime, zone: timezone | None) -> None:
    value = moment.replace(tzinfo=zone)
    assert timestamp_text(value) == value.isoformat()


def test_utc_timestamp_text() -> None:
    moment = datetime(2026, 11, 28, 12, 22, 5, 123456, tzinfo=UTC)
    assert utc_timestamp_text(moment) == "2026-11-28T12:22:05.123456Z"
    assert utc_timestamp_text(moment.replace(microsecond=0)) == "2026-11-28T12:22:05.000000Z"
