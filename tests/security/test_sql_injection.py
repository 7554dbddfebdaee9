"""Injection strings through every text field: the ledger stays intact, events go out verbatim.

The ledger's statements take every value as a bound parameter, so hostile text is data, never SQL. This
sends the classic payloads through ``cmdl`` and ``user`` (published as is), and through the ids and the
timestamp (which validation must reject), then checks the tables, the row count and the stream; and it
reads the wire, where the values must travel in the Bind message, apart from the statement's text.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest

from devkit import fleet
from devkit.kinesis import read_stream
from devkit.lambda_shapes import LambdaContext, sqs_event
from devkit.pgproxy import frontend_messages, latency_proxy
from processor.handler import handle_batch
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from telemetry_adapter.pipeline import BatchPipeline
from tests.conftest import STREAM

PAYLOADS = (
    "'; DROP TABLE submission_ledger; --",
    "x' OR '1'='1",
    '"; DELETE FROM processor_heartbeat; --',
    "\\'; TRUNCATE schema_migrations; --",
    "$$; DROP TABLE submission_ledger; $$",
    'C:\\Windows\\System32\\cmd.exe /c "del /q *" \\\\server\\share',
    "Robert'); DROP TABLE students;--",
    "１' ＯＲ ＇1＇=＇1 ∕∕ unicode look-alikes \u202e RTL override 🙂",
    "line one\nline two\ttabbed\r\n",
    ":ids :owner %s %(owner)s {owner} ?",
)


def _table_names(database_url: str) -> set[str]:
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        rows = connection.run("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in rows}
    finally:
        connection.close()


def _ledger_count(database_url: str) -> int:
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        return int(connection.run("SELECT count(*) FROM submission_ledger")[0][0])
    finally:
        connection.close()


@pytest.fixture
def documents() -> list[dict[str, Any]]:
    """One valid submission per payload, the payload in ``cmdl`` and reversed in ``user``."""
    rng = random.Random(5)
    device = fleet.device_ids(1)[0]
    built = []
    for payload in PAYLOADS:
        document = fleet.submission(rng, device, processes=1, connections=1)
        document["events"]["new_process"] = [{"cmdl": payload, "user": payload[::-1]}]
        document["comment"] = payload  # unknown fields are ignored, whatever they hold
        built.append(document)
    return built


def test_injection_strings_in_text_fields_are_published_verbatim(
    pipeline: BatchPipeline, kinesis: Any, clean_database: str, documents: list[dict[str, Any]]
) -> None:
    tables_before = _table_names(clean_database)
    response = handle_batch(sqs_event(fleet.encode(d) for d in documents), LambdaContext(), pipeline)
    assert response == {"batchItemFailures": []}
    assert _table_names(clean_database) == tables_before >= {"submission_ledger", "processor_heartbeat"}
    assert _ledger_count(clean_database) == len(PAYLOADS)
    published = {
        record["submission_id"]: record["event_details"]
        for record in read_stream(kinesis, STREAM)
        if record["event_type"] == "new_process"
    }
    for document in documents:
        payload = document["events"]["new_process"][0]["cmdl"]
        assert published[document["submission_id"]] == {"cmdl": payload, "user": payload[::-1]}


@pytest.mark.parametrize("field", ["submission_id", "device_id", "time_created"])
def test_injection_strings_in_ids_and_timestamp_are_rejected_and_never_reach_the_ledger(
    pipeline: BatchPipeline, kinesis: Any, clean_database: str, field: str
) -> None:
    rng = random.Random(6)
    bodies = []
    for payload in PAYLOADS:
        document = fleet.submission(rng, fleet.device_ids(1)[0])
        document[field] = payload
        bodies.append(fleet.encode(document))
    response = handle_batch(sqs_event(bodies), LambdaContext(), pipeline)
    assert response == {"batchItemFailures": []}  # rejected means acknowledged, never retried
    assert _ledger_count(clean_database) == 0
    assert read_stream(kinesis, STREAM) == []


def test_nul_and_control_characters_are_rejected_not_passed_to_sql_or_kinesis(
    pipeline: BatchPipeline, kinesis: Any, clean_database: str
) -> None:
    rng = random.Random(7)
    bodies = []
    for text in ("nul\x00byte", "bell\x07", "escape\x1b[31m", "del\x7f"):
        document = fleet.submission(rng, fleet.device_ids(1)[0], processes=1, connections=0)
        document["events"]["new_process"][0]["cmdl"] = text
        bodies.append(fleet.encode(document))  # JSON carries them as \u0000 escapes
    bodies.append(json.dumps({"submission_id": str(uuid.uuid4()), "device_id": "\u0000", "events": {}}))
    response = handle_batch(sqs_event(bodies), LambdaContext(), pipeline)
    assert response == {"batchItemFailures": []}
    assert _ledger_count(clean_database) == 0
    assert read_stream(kinesis, STREAM) == []


def test_an_uppercase_uuid_is_the_same_submission_not_a_new_row(
    pipeline: BatchPipeline, kinesis: Any, clean_database: str
) -> None:
    document = fleet.submission(random.Random(8), fleet.device_ids(1)[0])
    shouting = dict(document, submission_id=document["submission_id"].upper())
    handle_batch(sqs_event([fleet.encode(document)]), LambdaContext(), pipeline)
    handle_batch(sqs_event([fleet.encode(shouting)]), LambdaContext(), pipeline)
    assert _ledger_count(clean_database) == 1
    assert len(read_stream(kinesis, STREAM)) == fleet.expected_event_count(document)


def test_hostile_text_travels_in_bind_apart_from_the_sql_text(clean_database: str) -> None:
    tables_before = _table_names(clean_database)
    with latency_proxy(clean_database, 0.0, record=True) as proxy:
        provider = ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect)
        ledger = Ledger(provider)
        try:
            provider.get()
            for payload in PAYLOADS:
                assert proxy.sent is not None
                start = len(proxy.sent)
                item = ClaimRequest(str(uuid.uuid4()), str(uuid.uuid4()), payload.encode()[:32].ljust(32, b"-"), 1)
                ledger.claim([item], owner=payload, lease_seconds=60)
                messages = frontend_messages(proxy.sent[start:])
                assert [code for code, _ in messages] == [b"P", b"B", b"D", b"E", b"S"]  # one exchange
                parse, bind = messages[0][1], messages[1][1]
                assert b"$5" in parse  # the statement, its values replaced by placeholders
                assert payload.encode() not in parse
                assert payload.encode() in bind  # the value, bound as data
                owner = provider.get().run(
                    "SELECT lease_owner FROM submission_ledger WHERE submission_id = CAST(:id AS uuid)",
                    id=item.submission_id,
                )
                assert owner == [[payload]]
        finally:
            provider.discard()
    assert _table_names(clean_database) == tables_before
    assert _ledger_count(clean_database) == len(PAYLOADS)
