"""The hand-written fast paths the benchmark work introduced give exactly the standard library's output.

Event ids (UUIDv5 without UUID objects) and event details (JSON written directly) are part of the
consumers' contract, so each is compared byte for byte with the obvious implementation it replaced.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devkit import fleet
from devkit.kinesis import FlakyKinesis, read_stream
from devkit.lambda_shapes import LambdaContext, sqs_event
from processor.handler import handle_batch
from telemetry_adapter.config import Limits
from telemetry_adapter.records import build_records, event_id
from telemetry_adapter.submission import validate_document
from tests.conftest import FAST_RETRIES, STREAM, make_pipeline

# Quotes, backslashes and any non-ASCII text; control characters are rejected by validation, so left out.
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(str.strip)
_IP = st.ip_addresses().map(str)


@given(st.uuids(), st.integers(min_value=0, max_value=1_000_000))
def test_event_id_is_the_standard_uuid5(namespace: uuid.UUID, sequence: int) -> None:
    assert event_id(str(namespace), sequence) == str(uuid.uuid5(namespace, str(sequence)))


@settings(max_examples=200)
@given(
    st.lists(st.fixed_dictionaries({"cmdl": _TEXT, "user": _TEXT}), max_size=4),
    st.lists(
        st.fixed_dictionaries({"source_ip": _IP, "destination_ip": _IP, "destination_port": st.integers(0, 65_535)}),
        max_size=4,
    ),
)
def test_details_and_records_match_json_dumps(
    processes: list[dict[str, str]], connections: list[dict[str, object]]
) -> None:
    submission_id = "5D9F1C2E-8A3B-4C1D-9E2F-0A1B2C3D4E5F"
    document: dict[str, object] = {
        "submission_id": "5D9F1C2E-8A3B-4C1D-9E2F-0A1B2C3D4E5F",
        "device_id": "154ef306-c788-4934-9489-118173e4ea1a",
        "time_created": "2024-03-05T03:49:51.123456",
        "events": {"new_process": processes, "network_connection": connections},
    }
    submission = validate_document(document, Limits())
    # The details keep the schema's field order, whatever order the sensor sent them in.
    expected = [("new_process", {"cmdl": p["cmdl"], "user": p["user"]}) for p in processes] + [
        ("network_connection", {name: c[name] for name in ("source_ip", "destination_ip", "destination_port")})
        for c in connections
    ]
    assert [(kind, json.loads(details)) for kind, details in submission.events] == expected
    assert [details for _, details in submission.events] == [
        json.dumps(item, ensure_ascii=False, separators=(",", ":")) for _, item in expected
    ]
    for sequence, record in enumerate(build_records(submission, 0, "2026-11-28T12:22:05.123456Z")):
        data = json.loads(record.data)
        assert data["id"] == str(uuid.uuid5(uuid.UUID(submission_id), str(sequence)))
        assert data["sequence"] == sequence


class CallingThreads:
    """Kinesis noting which threads call it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.threads: set[int] = set()

    def put_records(self, **kwargs: Any) -> Any:
        self.threads.add(threading.get_ident())
        return self.client.put_records(**kwargs)


def test_one_call_at_a_time_publishes_on_one_thread_with_the_same_guarantees(clean_database: str, kinesis: Any) -> None:
    """PUBLISH_CONCURRENCY=1 runs one call at a time on one worker thread (not the caller's, which must
    stay free to stop waiting for a call past its wall-clock limit); faults are still retried and order
    kept."""
    flaky = FlakyKinesis(kinesis, record_failure_rate=0.2, call_failure_rate=0.1, lost_answer_rate=0.05, seed=4)
    calling = CallingThreads(flaky)
    publish = dataclasses.replace(FAST_RETRIES, max_concurrency=1)
    pipeline = make_pipeline(clean_database, calling, publish=publish)
    rng = random.Random(9)
    devices = fleet.device_ids(3)
    documents = [fleet.submission(rng, devices[i % 3]) for i in range(12)]
    response = handle_batch(sqs_event(fleet.encode(d) for d in documents), LambdaContext(), pipeline)
    assert response == {"batchItemFailures": []}
    assert flaky.faults.records_failed + flaky.faults.calls_failed > 0
    assert len(calling.threads) == 1
    assert threading.get_ident() not in calling.threads
    records = read_stream(kinesis, STREAM)
    for document in documents:
        sequences = [r["sequence"] for r in records if r["submission_id"] == document["submission_id"]]
        # Same-id copies are allowed after a lost answer; first occurrences must be in order.
        assert list(dict.fromkeys(sequences)) == list(range(fleet.expected_event_count(document)))
