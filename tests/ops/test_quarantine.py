"""``quarantine list | show | replay`` against the local stack, on objects in the processor's own format;
and the proof that replaying twice publishes every event once, through the real handler."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from devkit import fleet
from devkit.kinesis import read_stream
from local_stack.invocation import build_pipeline, lambda_style_handler
from local_stack.poller import Poller
from local_stack.resources import queue_depth
from local_stack.tally import Tally
from ops.quarantine import Filters, Found, find
from telemetry_adapter.quarantine_format import (
    REPLAYED_FROM,
    REPLAYED_MESSAGE_ID,
    QuarantinedMessage,
    encode,
    object_key,
)
from tests.ops.conftest import LocalStack, Outcome, valid_document

pytestmark = pytest.mark.timeout(180)
NOW = datetime.now(UTC).replace(microsecond=0)
DRAIN_POLLS = 30


def rejected(
    body: str, reason: str, at: datetime, *, device: str | None = None, submission: str | None = None
) -> QuarantinedMessage:
    return QuarantinedMessage(
        message_id=str(uuid.uuid4()),
        body=body,
        reason=reason,
        field="events",
        quarantined_at=at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        sender_id="AIDAEXAMPLE",
        sent_at=at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        receive_count=1,
        submission_id=submission,
        device_id=device,
    )


def store(local: LocalStack, at: datetime, *messages: QuarantinedMessage) -> str:
    """One object, as the processor writes it for a batch with rejections."""
    key = object_key(at, uuid.uuid4().hex[:12])
    local.client("s3").put_object(Bucket=local.bucket, Key=key, Body=encode(messages))
    return key


def test_list_filters_by_time_reason_and_device(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    device = str(uuid.uuid4())
    old = NOW - timedelta(days=3)
    store(local, old, rejected("b-old", "not_json", old))
    recent_key = store(
        local,
        NOW - timedelta(hours=1),
        rejected("b1", "unknown_event_type", NOW - timedelta(hours=1), device=device),
        rejected("b2", "invalid_ip", NOW - timedelta(hours=1), device=str(uuid.uuid4())),
    )
    local.client("s3").put_object(Bucket=local.bucket, Key=f"rejected/{NOW:%Y/%m/%d/%H}/garbage.jsonl.gz", Body=b"no")

    default = run_ops("quarantine", "list", "--json")
    assert default.status == 0, default.err
    rows = [json.loads(line) for line in default.out.splitlines()]
    assert sorted(row["reason"] for row in rows) == ["invalid_ip", "unknown_event_type"]  # last 24 h only
    assert {row["key"] for row in rows} == {recent_key}
    assert "skipped rejected/" in default.err  # an unreadable object is reported, not fatal

    by_reason = run_ops("quarantine", "list", "--reason", "unknown_event_type")
    assert by_reason.status == 0
    assert "unknown_event_type" in by_reason.out
    assert "invalid_ip" not in by_reason.out
    assert by_reason.out.splitlines()[-1].startswith("1 messages from ")
    by_device = run_ops("quarantine", "list", "--json", "--device", device.upper())
    assert [json.loads(line)["device_id"] for line in by_device.out.splitlines()] == [device]
    week = run_ops("quarantine", "list", "--json", "--since", "7d", "--limit", "2")
    assert len(week.out.splitlines()) == 2
    assert json.loads(week.out.splitlines()[0])["reason"] == "not_json"  # oldest first
    window = run_ops("quarantine", "list", "--json", "--since", "4d", "--until", "2d")
    assert [json.loads(line)["reason"] for line in window.out.splitlines()] == ["not_json"]


def test_show_decodes_the_body_and_says_what_the_decoder_makes_of_it_now(
    local: LocalStack, run_ops: Callable[..., Outcome]
) -> None:
    document = valid_document(5, events=2)
    body = fleet.encode(document)
    message = rejected(body, "too_many_events", NOW, submission=document["submission_id"])
    hostile = rejected(fleet.hostile_body("not_utf8"), "not_utf8", NOW)
    key = store(local, NOW, message, hostile)

    shown = run_ops("quarantine", "show", key, message.message_id)
    assert shown.status == 0, shown.err
    assert "reason          too_many_events (events)" in shown.out
    assert "decoder now     valid, 2 events" in shown.out
    assert f'"submission_id": "{document["submission_id"]}"' in shown.out  # decoded from base64
    raw = run_ops("quarantine", "show", key, message.message_id, "--raw")
    assert raw.out == body + "\n"
    both = run_ops("quarantine", "show", key)
    assert "decoder now     rejected: not_utf8 (body)" in both.out
    assert "body (not a JSON object" in both.out
    missing = run_ops("quarantine", "show", "rejected/no/such/key.jsonl.gz")
    assert missing.status == 1
    assert "no object" in missing.err


def test_replay_sends_the_bodies_unchanged_with_where_they_came_from(
    local: LocalStack, run_ops: Callable[..., Outcome]
) -> None:
    bodies = [fleet.encode(valid_document(seed)) for seed in range(3)]
    messages = [rejected(body, "unknown_event_type", NOW) for body in bodies]
    key = store(local, NOW, *messages)
    store(local, NOW, rejected("other", "not_json", NOW))
    sqs = local.client("sqs")

    dry = run_ops("quarantine", "replay", "--reason", "unknown_event_type", "--dry-run")
    assert dry.status == 0, dry.err
    assert "dry run: would send 3 messages" in dry.out
    assert dry.out.count("decoder now: valid") == 3
    assert queue_depth(sqs, local.queue_url).total == 0

    sent = run_ops("quarantine", "replay", "--reason", "unknown_event_type", "--rate", "1000")
    assert sent.status == 0, sent.err
    assert "sent 3 messages" in sent.out
    received = sqs.receive_message(QueueUrl=local.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])[
        "Messages"
    ]
    assert sorted(message["Body"] for message in received) == sorted(bodies)
    by_body = {message.body: message.message_id for message in messages}
    for message in received:
        attributes = message["MessageAttributes"]
        assert attributes[REPLAYED_FROM]["StringValue"] == f"s3://{local.bucket}/{key}"
        assert attributes[REPLAYED_MESSAGE_ID]["StringValue"] == by_body[message["Body"]]


def test_replay_can_leave_out_what_is_still_invalid(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    store(local, NOW, rejected(fleet.encode(valid_document(1)), "too_large", NOW), rejected("{", "not_json", NOW))
    result = run_ops("quarantine", "replay", "--skip-invalid", "--rate", "1000")
    assert result.status == 0, result.err
    assert "sent 1 messages" in result.out
    assert queue_depth(local.client("sqs"), local.queue_url).visible == 1


def test_replay_leaves_out_conflicting_duplicates_unless_forced(
    local: LocalStack, run_ops: Callable[..., Outcome]
) -> None:
    """Once the ledger's clean-up deleted the first content's row, a replayed conflict would publish a
    second content under the same ids: it is never sent by default."""
    document = valid_document(1)
    other = json.loads(json.dumps(document))
    other["events"]["new_process"] = [{"cmdl": "other.exe", "user": "eve"}]
    conflict = rejected(fleet.encode(other), "conflicting_duplicate", NOW, submission=document["submission_id"])
    store(local, NOW, conflict, rejected(fleet.encode(valid_document(2)), "unknown_event_type", NOW))
    sqs = local.client("sqs")

    result = run_ops("quarantine", "replay", "--rate", "1000")
    assert result.status == 0, result.err
    assert "sent 1 messages" in result.out
    assert "left out 1 conflicting_duplicate messages" in result.err
    assert conflict.message_id not in result.out
    assert queue_depth(sqs, local.queue_url).visible == 1

    forced = run_ops("quarantine", "replay", "--force", "--reason", "conflicting_duplicate", "--rate", "1000")
    assert forced.status == 0, forced.err
    assert "sent 1 messages" in forced.out
    assert queue_depth(sqs, local.queue_url).visible == 2


def drain(local: LocalStack, poller: Poller) -> None:
    """Poll until the queue is empty (bounded in polls, not in time)."""
    sqs = local.client("sqs")
    for _ in range(DRAIN_POLLS):
        poller.poll_once()
        if queue_depth(sqs, local.queue_url).total == 0:
            return
    raise AssertionError("the queue did not drain")


def _everything(local: LocalStack) -> list[Found]:
    s3 = local.client("s3")
    window = Filters(since=NOW - timedelta(days=1), until=datetime.now(UTC) + timedelta(hours=1))
    return list(find(s3, local.bucket, window, limit=1_000))


def test_replaying_twice_publishes_every_event_once(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    """The ledger decides again: the second replay's copies are duplicates, suppressed."""
    documents = [valid_document(seed, events=3 + seed) for seed in range(3)]
    still_invalid = fleet.hostile_body("not_json")
    messages = [rejected(fleet.encode(d), "unknown_event_type", NOW) for d in documents]
    store(local, NOW, *messages, rejected(still_invalid, "not_json", NOW))
    tally = Tally()
    pipeline = build_pipeline(tally)  # the processor as make run drives it, on the local stack's environment
    poller = Poller(
        local.client("sqs"),
        local.queue_url,
        lambda_style_handler(pipeline),
        tally,
        batch_size=10,
        batching_window=0,
        visibility_timeout=30,
        function_timeout=5,
    )
    try:
        # The first replay's still-invalid copy is quarantined again, naming the original: the second
        # replay sends the original once, not the original and its copy.
        for run in range(3):
            replayed = run_ops("quarantine", "replay", "--rate", "1000")
            assert replayed.status == 0, replayed.err
            assert "sent 4 messages" in replayed.out
            assert ("left out" in replayed.err) == (run > 0)
            drain(local, poller)
    finally:
        pipeline.publisher.close()

    records = read_stream(local.client("kinesis"), local.stack.resources.stream_name)
    per_submission = Counter(record["submission_id"] for record in records)
    assert per_submission == {d["submission_id"]: fleet.expected_event_count(d) for d in documents}
    assert len({record["id"] for record in records}) == len(records)  # each event once, not twice
    for document in documents:
        sequences = [r["sequence"] for r in records if r["submission_id"] == document["submission_id"]]
        assert sequences == list(range(fleet.expected_event_count(document)))
    assert tally.received == 12  # every replay reached the processor
    assert tally.duplicates_suppressed == 2 * len(documents)  # the later replays' copies
    assert tally.rejected["not_json"] == 3  # still invalid: rejected again, never published
    assert tally.quarantined == 3  # and quarantined again, body unchanged, once per replay (not doubling)
    everything = _everything(local)
    assert Counter(item.message.body for item in everything) == {still_invalid: 4, **{m.body: 1 for m in messages}}
    copies = [item.message for item in everything if item.message.replayed_message_id is not None]
    invalid_id = next(item.message.message_id for item in everything if item.message.body == still_invalid)
    assert [copy.replayed_message_id for copy in copies] == [invalid_id] * 3  # each names the first rejection
    assert all((copy.replayed_from or "").startswith(f"s3://{local.bucket}/rejected/") for copy in copies)
    assert queue_depth(local.client("sqs"), local.dlq_url).total == 0
