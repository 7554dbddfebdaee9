"""Each sample event in events/ (the ones `sam local invoke` uses) through the real handler, in process."""

from __future__ import annotations

import base64
import json
from typing import Any

from devkit.kinesis import read_stream
from devkit.lambda_shapes import LambdaContext
from processor.handler import handle_batch
from telemetry_adapter.pipeline import BatchPipeline
from tests.conftest import STREAM
from tests.infra.conftest import EVENTS_DIR


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return event


def document(record: dict[str, Any]) -> dict[str, Any]:
    body = record["body"]
    decoded: dict[str, Any] = json.loads(body if body.lstrip().startswith("{") else base64.b64decode(body))
    return decoded


def event_count(doc: dict[str, Any]) -> int:
    return sum(len(items) for items in doc["events"].values())


def test_valid_event_publishes_every_event(pipeline: BatchPipeline, kinesis: Any) -> None:
    event = load("valid")
    assert handle_batch(event, LambdaContext(), pipeline) == {"batchItemFailures": []}
    records = read_stream(kinesis, STREAM)
    documents = [document(r) for r in event["Records"]]
    assert len(records) == sum(event_count(d) for d in documents) > 0
    for doc in documents:
        mine = [r["sequence"] for r in records if r["submission_id"] == doc["submission_id"]]
        assert mine == list(range(event_count(doc)))


def test_invalid_event_is_acknowledged_and_publishes_nothing(pipeline: BatchPipeline, kinesis: Any) -> None:
    event = load("invalid")
    assert handle_batch(event, LambdaContext(), pipeline) == {"batchItemFailures": []}
    assert read_stream(kinesis, STREAM) == []


def test_duplicate_event_publishes_once(pipeline: BatchPipeline, kinesis: Any) -> None:
    event = load("duplicate")
    assert len(event["Records"]) == 3
    assert handle_batch(event, LambdaContext(), pipeline) == {"batchItemFailures": []}
    records = read_stream(kinesis, STREAM)
    assert len(records) == event_count(document(event["Records"][0]))
    # Delivered again later (SQS redelivery): suppressed, nothing more published.
    assert handle_batch(event, LambdaContext(), pipeline) == {"batchItemFailures": []}
    assert len(read_stream(kinesis, STREAM)) == len(records)


def test_mixed_event_publishes_only_the_valid_submissions(pipeline: BatchPipeline, kinesis: Any) -> None:
    event = load("mixed")
    # The copy with other content waits for a redelivery (never decided against a copy in its own
    # batch); redelivered, it meets the recorded content and is dropped as a conflicting duplicate.
    conflicting = event["Records"][-1]
    first = handle_batch(event, LambdaContext(), pipeline)
    assert first == {"batchItemFailures": [{"itemIdentifier": conflicting["messageId"]}]}
    assert handle_batch({"Records": [conflicting]}, LambdaContext(), pipeline) == {"batchItemFailures": []}
    records = read_stream(kinesis, STREAM)
    first = document(event["Records"][0])
    assert [r["sequence"] for r in records] == list(range(event_count(first)))
    assert {r["submission_id"] for r in records} == {first["submission_id"]}


def test_every_sample_is_an_sqs_event() -> None:
    names = sorted(path.stem for path in EVENTS_DIR.glob("*.json") if not path.stem.startswith("env"))
    assert names == ["duplicate", "invalid", "mixed", "valid"]
    for name in names:
        for record in load(name)["Records"]:
            assert record["eventSource"] == "aws:sqs"
            assert {"messageId", "receiptHandle", "body", "attributes", "eventSourceARN"} <= set(record)
