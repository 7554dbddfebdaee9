"""The tool's parts on their own: pacing by count (no clock read), batching within SQS's limits, message
attributes within SQS's ten, durations, and bodies of any kind read without raising."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devkit import fleet
from ops.bodies import inspect_body
from ops.dlq import dead_letter
from ops.pacing import Pacer
from ops.report import duration
from ops.sending import MAX_ATTRIBUTES, MAX_BATCH_BYTES, MAX_ENTRIES, Outgoing, _groups, _sized, with_attributes
from tests.ops.conftest import valid_document


class FakeClock:
    """A clock that moves only when slept on, recording each sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_spreads_messages_at_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(4.0, clock=clock.time, sleep=clock.sleep)
    for _ in range(3):
        pacer.take(10)  # ten messages at four per second: 2.5 s per batch
    assert clock.sleeps == [2.5, 2.5]  # the first batch goes at once
    clock.now += 60  # a long pause earns no burst
    pacer.take(1)
    pacer.take(1)
    assert clock.sleeps[2:] == [0.25]
    with pytest.raises(ValueError):
        Pacer(0)


def test_batches_stay_within_ten_messages_and_the_size_limit() -> None:
    small = [Outgoing(str(n), "x" * 100) for n in range(25)]
    assert [len(group) for group in _groups([_sized(m) for m in small])] == [MAX_ENTRIES, MAX_ENTRIES, 5]
    big = [Outgoing(str(n), "y" * (MAX_BATCH_BYTES // 2)) for n in range(3)] + [
        Outgoing("huge", "z" * MAX_BATCH_BYTES * 2)
    ]
    assert [[item.message.key for item in group] for group in _groups([_sized(m) for m in big])] == [
        ["0", "1"],
        ["2"],
        ["huge"],
    ]


def test_added_attributes_never_push_out_the_original_ones() -> None:
    original = {f"a{n}": {"DataType": "String", "StringValue": str(n), "StringListValues": []} for n in range(9)}
    merged = with_attributes(original, {"RedrivenFrom": "m-1", "Another": "x"})
    assert len(merged) == MAX_ATTRIBUTES
    assert merged["RedrivenFrom"] == {"DataType": "String", "StringValue": "m-1"}
    assert "Another" not in merged
    assert merged["a0"] == {"DataType": "String", "StringValue": "0"}  # only what SendMessage takes


def test_durations_read_like_people_write_them() -> None:
    assert duration(timedelta(days=3, hours=4, minutes=5)) == "3d 4h"
    assert duration(timedelta(hours=2, seconds=9)) == "2h 0m"
    assert duration(timedelta(seconds=7)) == "7s"
    assert duration(timedelta(seconds=-90)) == "1m 30s"


def test_expiry_counts_from_the_original_send() -> None:
    sent = datetime(2026, 11, 1, 12, tzinfo=UTC)
    message = {
        "MessageId": "m-1",
        "Body": fleet.encode(valid_document(1)),
        "Attributes": {
            "SentTimestamp": str(int(sent.timestamp() * 1000)),
            "ApproximateReceiveCount": "53",
            "DeadLetterQueueSourceArn": "arn:aws:sqs:eu-west-1:123456789012:telemetry-adapter-prod-submissions",
        },
        "MessageAttributes": {"HandedBackFrom": {"DataType": "String", "StringValue": "m-0"}},
    }
    letter = dead_letter(message, retention=14 * 86_400)
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    assert letter.expires_at == datetime(2026, 11, 15, 12, tzinfo=UTC)
    assert letter.age(now) == timedelta(days=9)
    assert letter.time_left(now) == timedelta(days=5)
    assert letter.receive_count == 53
    assert letter.source_queue == "telemetry-adapter-prod-submissions"
    assert letter.attributes == {"HandedBackFrom": "m-0"}
    assert letter.view.valid


def test_known_defects_and_hostile_bodies_are_read_with_their_reason() -> None:
    document = valid_document(2)
    bad_ip = inspect_body(fleet.encode(fleet.with_defect(document, "bad_ip")))
    assert (bad_ip.verdict, bad_ip.submission_id, bad_ip.device_id) == (
        "invalid_ip",
        document["submission_id"],
        document["device_id"],
    )
    assert inspect_body(fleet.encode(fleet.with_defect(document, "bad_uuid"))).submission_id.startswith("not-a-uuid")  # type: ignore[union-attr]
    for kind in fleet.HOSTILE:
        view = inspect_body(fleet.hostile_body(kind))
        assert not view.valid, kind
    assert inspect_body(None).verdict == "not_base64"


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda raw: base64.b64encode(raw).decode())))
def test_any_body_is_read_without_raising(body: str) -> None:
    view = inspect_body(body)
    assert view.verdict
