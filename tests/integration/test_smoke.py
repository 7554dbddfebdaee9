"""The happy path end to end: one batch in, every event out, in order."""

from __future__ import annotations

import random
from typing import Any

from devkit import fleet
from devkit.kinesis import read_stream
from devkit.lambda_shapes import LambdaContext, sqs_event
from processor.handler import handle_batch
from telemetry_adapter.pipeline import BatchPipeline
from tests.conftest import STREAM


def test_valid_batch_publishes_every_event_in_order(pipeline: BatchPipeline, kinesis: Any) -> None:
    rng = random.Random(3)
    devices = fleet.device_ids(5)
    documents = [fleet.submission(rng, devices[i % 5]) for i in range(20)]
    response = handle_batch(sqs_event(fleet.encode(d) for d in documents), LambdaContext(), pipeline)
    assert response == {"batchItemFailures": []}
    records = read_stream(kinesis, STREAM)
    assert len(records) == sum(fleet.expected_event_count(d) for d in documents)
    for document in documents:
        mine = [r for r in records if r["submission_id"] == document["submission_id"]]
        assert [r["sequence"] for r in mine] == list(range(fleet.expected_event_count(document)))
