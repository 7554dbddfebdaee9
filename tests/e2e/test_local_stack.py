"""``make run`` end to end: the fleet, the real handler behind an emulated SQS event source, faults at
the Kinesis boundary, and an independent read of the whole stream at the end."""

from __future__ import annotations

import io
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from devkit.kinesis import read_stream
from local_stack.options import Options
from local_stack.output import output_to_log
from local_stack.resources import queue_depth
from local_stack.services import aws_client, local_services
from local_stack.session import Shutdown, run_local
from ops.quarantine import read_object
from telemetry_adapter.quarantine_format import QuarantinedMessage

pytestmark = pytest.mark.slow


def quarantine_contents(s3: Any, bucket: str) -> list[QuarantinedMessage]:
    """Every message of every object in the quarantine bucket."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return [message for key in keys for message in read_object(s3, bucket, key)]


def _by_submission(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:  # read_stream keeps each shard's order; a submission lives on one shard
        grouped[record["submission_id"]].append(record)
    return grouped


@pytest.mark.timeout(120)
def test_nothing_valid_lost_or_reordered_under_kinesis_faults(tmp_path: Path, stack_database: str | None) -> None:
    options = Options(
        devices=10,
        interval=0.5,
        duration=20,
        broken_rate=0.02,
        duplicate_rate=0.05,
        kinesis_error_rate=0.10,
        visibility_timeout=10,
        function_timeout=5,
        max_receive_count=5,
        drain_timeout=30,
        health_port=0,
        database_url=stack_database,
        summary=tmp_path / "run-summary.json",
        log_file=tmp_path / "run.log",
        stack_file=tmp_path / "local-stack.json",
        seed=42,
    )
    with output_to_log(options.log_file), local_services(options) as stack:
        result = run_local(options, stack, io.StringIO(), Shutdown())
        records = read_stream(aws_client("kinesis"), stack.resources.stream_name)
        sqs = aws_client("sqs")
        queue_left = queue_depth(sqs, stack.resources.queue_url).total
        dlq_left = queue_depth(sqs, stack.resources.dlq_url).total
        quarantined = quarantine_contents(aws_client("s3"), stack.resources.quarantine_bucket)

    assert not options.stack_file.exists(), "the stack file goes with the run"
    summary = result.summary
    sent = result.sent
    assert sent is not None
    grouped = _by_submission(records)

    # Every valid submission's events are there, once each, in order, with the deterministic ids.
    assert len(sent.expected) >= 300
    for submission_id, count in sent.expected.items():
        mine = grouped.get(submission_id, [])
        assert [r["sequence"] for r in mine] == list(range(count)), submission_id
        assert [r["id"] for r in mine] == [str(uuid.uuid5(uuid.UUID(submission_id), str(k))) for k in range(count)]
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids)), "no record was written twice (no lost answers or crashes were injected)"
    assert set(grouped) == set(sent.expected), "only valid submissions were published"
    assert not sent.broken_ids & set(grouped)

    # Queue and DLQ are empty: everything was acknowledged, rejected or suppressed, nothing dead-lettered.
    assert queue_left == 0
    assert dlq_left == 0

    # The faults and the bad input really were there, and the summary agrees with the stream.
    assert summary["kinesis_records_retried"] > 0
    broken = summary["submissions_sent_by_kind"]["defective"] + summary["submissions_sent_by_kind"]["hostile"]
    assert broken > 0
    assert sum(summary["rejected_by_reason"].values()) >= broken
    assert summary["submissions_sent_by_kind"]["re_sent_duplicates"] > 0
    assert summary["duplicates_suppressed"] >= summary["submissions_sent_by_kind"]["re_sent_duplicates"]
    assert summary["submissions_acknowledged"] == summary["submissions_sent"]
    assert summary["events_published"] == len(records)
    assert summary["lost_submissions"] == 0
    assert summary["order_violations"] == 0
    assert summary["ok"] is True

    # Every rejected message is in the quarantine bucket, with the submission id whenever it was a UUID.
    assert summary["quarantine_write_failures"] == 0
    assert len(quarantined) == summary["quarantined"] == sum(summary["rejected_by_reason"].values())
    assert Counter(message.reason for message in quarantined) == summary["rejected_by_reason"]
    assert sent.broken_ids <= {message.submission_id for message in quarantined}
    assert summary["health"] in ("ok", "degraded")
    assert summary["latency_ms"]["p99"] is not None
