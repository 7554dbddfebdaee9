"""The happy path end to end: one batch in, every event out, in order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from devkit import fleet
from devkit.kinesis import read_stream
from devkit.lambda_shapes import LambdaContext, sqs_event
from processor.handler import handle_batch, lambda_handler
from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.runtime import default_pipeline
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


def test_lambda_handler_from_the_environment(
    clean_database: str, kinesis: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real entry point, configured only by environment variables, as Lambda runs it."""
    monkeypatch.setenv("STREAM_NAME", STREAM)
    monkeypatch.setenv("DATABASE_URL", clean_database)
    default_pipeline.cache_clear()
    try:
        document = fleet.submission(random.Random(4), fleet.device_ids(1)[0])
        event = sqs_event([fleet.encode(document), fleet.hostile_body("not_json")])
        assert lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    finally:
        default_pipeline.cache_clear()
    assert len(read_stream(kinesis, STREAM)) == fleet.expected_event_count(document)
    output = capsys.readouterr().out
    assert '"reason":"not_json"' in output.replace(" ", "")
    assert "EventsPublished" in output


def test_missing_configuration_fails_the_invocation_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misconfigured function must not acknowledge (and so drop) anything: it raises."""
    monkeypatch.delenv("STREAM_NAME", raising=False)
    default_pipeline.cache_clear()
    with pytest.raises(ConfigurationError, match="STREAM_NAME"):
        lambda_handler(sqs_event(["e30="]), LambdaContext())


@pytest.mark.parametrize("size", [10, 500])
def test_ledger_round_trips_per_batch_are_constant(pipeline: BatchPipeline, size: int) -> None:
    rng = random.Random(size)
    devices = fleet.device_ids(10)
    event = sqs_event(fleet.encode(fleet.submission(rng, devices[i % 10])) for i in range(size))
    before = pipeline.ledger.statements
    assert handle_batch(event, LambdaContext(), pipeline) == {"batchItemFailures": []}
    assert pipeline.ledger.statements - before == 2
