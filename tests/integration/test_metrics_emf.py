"""The processor's EMF output names every metric the operations design watches, with the right values.

A real batch (valid submissions, rejects of two reasons, an in-batch duplicate and a conflicting one)
goes through ``processor.handler.lambda_handler`` itself, so Powertools' ``log_metrics`` flushes the
EMF documents to stdout as in Lambda. The only substitution is the pipeline factory, given a pipeline
on the test database whose Kinesis client fails a share of records (FlakyKinesis, at the boundary).
"""

from __future__ import annotations

import base64
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from devkit import fleet
from devkit.kinesis import FaultCounts, FlakyKinesis
from devkit.lambda_shapes import LambdaContext, sqs_event
from processor import handler as processor_handler
from telemetry_adapter.config import Settings
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import NAMESPACE, SERVICE, metrics
from telemetry_adapter.pipeline import BatchPipeline
from telemetry_adapter.publisher import OrderedPublisher
from telemetry_adapter.quarantine import QuarantineStore
from telemetry_adapter.runtime import record_statement_latency
from tests.conftest import FAST_RETRIES, REGION, STREAM

# Every metric the design asks operators to watch that the processor emits itself (SQS, Lambda and
# Kinesis service metrics, memory and CPU come from the platform and Lambda Insights).
COUNTS = (
    "MessagesReceived",
    "MessagesAcknowledged",
    "MessagesFailed",
    "EventsPublished",
    "SubmissionsRejected",
    "SubmissionsCompleted",
    "DuplicatesSuppressed",
    "ConflictingDuplicates",
    "SubmissionsBusyElsewhere",
    "KinesisRecordsRetried",
    "KinesisRecordsThrottled",
    "PutRecordsCalls",
    "PutRecordsCallsFailed",
    "SubmissionsGaveUp",
    "DeadlineStops",
    "LedgerFailures",
    "DecoderErrors",
    "LeasesLost",
    "MessagesHandedBack",
    "MessagesQuarantined",
    "QuarantineWriteFailures",
)
LATENCIES = ("BatchLatency", "PutRecordsLatency", "LedgerStatementLatency_claim", "LedgerStatementLatency_outcome")


@dataclass
class Emitted:
    """The metrics of every EMF document printed during one invocation."""

    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    units: dict[str, str] = field(default_factory=dict)
    by_reason: dict[str, float] = field(default_factory=dict)
    """``SubmissionsRejectedByReason`` by reason."""
    quarantined_by_reason: dict[str, float] = field(default_factory=dict)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def total(self, name: str) -> float:
        return sum(self.values[name])


def parse_emf(stdout: str) -> Emitted:
    """Collect metrics from the EMF lines of ``stdout`` (log lines are skipped)."""
    emitted = Emitted()
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        emitted.documents.append(document)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimensions = {name for dimension_set in directive["Dimensions"] for name in dimension_set}
            for metric in directive["Metrics"]:
                name = metric["Name"]
                raw = document[name]
                values = raw if isinstance(raw, list) else [raw]
                emitted.units[name] = metric["Unit"]
                if "reason" in dimensions:
                    by = emitted.quarantined_by_reason if name == "MessagesQuarantinedByReason" else emitted.by_reason
                    by[document["reason"]] = by.get(document["reason"], 0) + sum(values)
                emitted.values[name].extend(values)
    return emitted


def build_pipeline(database_url: str, client: Any, quarantine: QuarantineStore | None = None) -> BatchPipeline:
    """Wired like ``runtime.default_pipeline``: statement latencies go to the metrics."""
    settings = Settings(stream_name=STREAM, publish=FAST_RETRIES)
    ledger = Ledger(
        ConnectionProvider(DatabaseSettings.from_url(database_url).connect), on_statement=record_statement_latency
    )
    return BatchPipeline(settings, ledger, OrderedPublisher(client, STREAM, settings.publish), quarantine=quarantine)


@pytest.fixture
def use_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BatchPipeline]]:
    """Make ``lambda_handler`` use the pipeline the test appends (its factory is the composition root)."""
    chosen: list[BatchPipeline] = []
    monkeypatch.setattr(processor_handler, "default_pipeline", lambda: chosen[0])
    yield chosen
    for pipeline in chosen:
        pipeline.publisher.close()


def mixed_batch() -> tuple[list[str], int]:
    """Bodies of a batch and the events its valid submissions hold.

    The conflicting copy conflicts only once the ledger holds the original (a copy is never decided
    against another copy of the same batch): :func:`invoke_mixed_batch` records ``bodies[1]`` first.
    """
    rng = random.Random(11)
    devices = fleet.device_ids(4)
    valid = [fleet.submission(rng, devices[n % 4]) for n in range(10)]
    conflicting = json.loads(json.dumps(valid[1]))
    conflicting["events"]["new_process"].append({"cmdl": "evil.exe", "user": "mallory"})
    bodies = [
        *(fleet.encode(document) for document in valid),
        fleet.encode(fleet.with_defect(valid[2], "bad_ip")),
        fleet.encode(fleet.with_defect(valid[3], "bad_ip")),
        fleet.hostile_body("not_json"),
        fleet.encode(valid[0]),  # the same submission again: suppressed
        fleet.encode(conflicting),  # the same id with other content: conflicting_duplicate
    ]
    return bodies, sum(fleet.expected_event_count(document) for document in valid)


def invoke(event: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], Emitted]:
    # Tests that call handle_batch without log_metrics leave metrics in Powertools' process-wide buffer.
    metrics.clear_metrics()
    capsys.readouterr()
    response = processor_handler.lambda_handler(event, LambdaContext(timeout_ms=60_000))
    return response, parse_emf(capsys.readouterr().out)


def invoke_mixed_batch(
    capsys: pytest.CaptureFixture[str], flaky: FlakyKinesis | None = None
) -> tuple[list[str], int, dict[str, Any], Emitted]:
    """Record the original of the conflicting copy, then invoke the mixed batch; its bodies, the
    events its not yet published submissions hold, its response and its metrics (``flaky``'s fault
    counts start again with the mixed batch)."""
    bodies, events = mixed_batch()
    earlier, _ = invoke(sqs_event([bodies[1]]), capsys)
    assert earlier == {"batchItemFailures": []}
    if flaky is not None:
        flaky.faults = FaultCounts()
    first = json.loads(base64.b64decode(bodies[1]))
    response, emitted = invoke(sqs_event(bodies), capsys)
    return bodies, events - fleet.expected_event_count(first), response, emitted


def test_a_batch_emits_every_metric_with_its_value(
    clean_database: str, kinesis: Any, use_pipeline: list[BatchPipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    flaky = FlakyKinesis(kinesis, record_failure_rate=0.25, seed=5)
    use_pipeline.append(build_pipeline(clean_database, flaky))

    bodies, events, response, emitted = invoke_mixed_batch(capsys, flaky)

    assert response == {"batchItemFailures": []}
    missing = [name for name in (*COUNTS, *LATENCIES, "SubmissionsRejectedByReason") if name not in emitted.values]
    assert missing == []
    assert {name: emitted.units[name] for name in COUNTS} == dict.fromkeys(COUNTS, "Count")
    assert {name: emitted.units[name] for name in LATENCIES} == dict.fromkeys(LATENCIES, "Milliseconds")
    assert emitted.total("MessagesReceived") == len(bodies) == 15
    assert emitted.total("MessagesAcknowledged") == 15
    assert emitted.total("MessagesFailed") == 0
    assert emitted.total("EventsPublished") == events
    assert emitted.total("SubmissionsCompleted") == 9
    assert emitted.total("SubmissionsRejected") == 4
    assert emitted.by_reason == {"invalid_ip": 2, "not_json": 1, "conflicting_duplicate": 1}
    assert emitted.total("DuplicatesSuppressed") == 2
    assert emitted.total("ConflictingDuplicates") == 1
    assert flaky.faults.records_failed > 0
    assert flaky.faults.records_throttled > 0
    assert emitted.total("KinesisRecordsRetried") == flaky.faults.records_failed
    assert emitted.total("KinesisRecordsThrottled") == flaky.faults.records_throttled
    calls = emitted.total("PutRecordsCalls")
    assert calls >= 10  # the longest submission has 10 events, one per call
    assert len(emitted.values["PutRecordsLatency"]) == calls
    assert emitted.total("LedgerFailures") == 0
    assert emitted.total("DecoderErrors") == 0
    assert (
        len(emitted.values["LedgerStatementLatency_claim"])
        == len(emitted.values["LedgerStatementLatency_outcome"])
        == 1
    )
    assert emitted.values["BatchLatency"][0] > 0


def test_every_document_is_valid_emf_in_the_service_namespace(
    clean_database: str, kinesis: Any, use_pipeline: list[BatchPipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    use_pipeline.append(build_pipeline(clean_database, kinesis))
    _, _, _, emitted = invoke_mixed_batch(capsys)
    assert len(emitted.documents) == 1 + 3  # the batch's document, one per rejection reason
    for document in emitted.documents:
        metadata = document["_aws"]
        assert isinstance(metadata["Timestamp"], int)
        for directive in metadata["CloudWatchMetrics"]:
            assert directive["Namespace"] == NAMESPACE
            assert all("service" in dimension_set for dimension_set in directive["Dimensions"])
            assert document["service"] == SERVICE
    reasons = [document for document in emitted.documents if "reason" in document]
    assert all(
        document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "reason"]] for document in reasons
    )


def test_an_unreachable_ledger_shows_in_ledger_failures(
    kinesis: Any, use_pipeline: list[BatchPipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    use_pipeline.append(build_pipeline("postgresql://postgres@127.0.0.1:1/postgres", kinesis))
    rng = random.Random(2)
    bodies = [fleet.encode(fleet.submission(rng, device)) for device in fleet.device_ids(3)]

    response, emitted = invoke(sqs_event(bodies), capsys)

    assert len(response["batchItemFailures"]) == 3
    assert emitted.total("LedgerFailures") == 1
    assert emitted.total("MessagesFailed") == 3
    assert emitted.total("MessagesAcknowledged") == 0
    assert emitted.total("EventsPublished") == 0


def test_quarantined_messages_and_failed_writes_are_counted(
    clean_database: str, kinesis: Any, use_pipeline: list[BatchPipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="quarantine")
    use_pipeline.append(build_pipeline(clean_database, kinesis, QuarantineStore(s3, "quarantine")))
    bodies = [fleet.hostile_body("not_json"), fleet.hostile_body("not_json"), fleet.hostile_body("not_utf8")]

    response, emitted = invoke(sqs_event(bodies), capsys)

    assert response == {"batchItemFailures": []}
    assert emitted.total("MessagesQuarantined") == 3
    assert emitted.quarantined_by_reason == {"not_json": 2, "not_utf8": 1}
    assert emitted.total("QuarantineWriteFailures") == 0

    use_pipeline[0] = build_pipeline(clean_database, kinesis, QuarantineStore(s3, "no-such-bucket"))
    response, emitted = invoke(sqs_event(bodies), capsys)

    assert len(response["batchItemFailures"]) == 3
    assert emitted.total("QuarantineWriteFailures") == 1
    assert emitted.total("MessagesQuarantined") == 0
    assert emitted.quarantined_by_reason == {}
    assert emitted.total("MessagesFailed") == 3
