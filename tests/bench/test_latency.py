"""The modelled network's delays reach the clients they must and go away after; the SQL proxy counts round
trips on the wire; the one-trip connection keeps pg8000's behaviour at one round trip per statement."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from bench.latency import DYNAMODB_EVENT, CallDelay, OperationCounter, attach, delay_calls, kinesis_latency
from bench.one_trip import connect_one_trip, wire_round_trips
from bench.pgproxy import latency_proxy
from bench.workload import make_batch
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.runtime import kinesis_client

RTT_MS = 40.0
_RECORD: list[dict[str, Any]] = [{"Data": b"x", "PartitionKey": "k"}]


def _put(client: Any, stream: str) -> None:
    response = client.put_records(StreamName=stream, Records=_RECORD)
    assert response["FailedRecordCount"] == 0  # moto still answers behind the delay


def test_putrecords_waits_on_every_client_created_inside(kinesis: Any) -> None:
    with kinesis_latency(RTT_MS) as delay:
        ours = boto3.client("kinesis", region_name="us-east-1")
        handlers = kinesis_client()  # the handler's own client, built by the runtime
        _put(ours, "events")
        _put(handlers, "events")
        ours.describe_stream_summary(StreamName="events")  # other operations are not delayed
        assert delay.calls == 2
    after = boto3.client("kinesis", region_name="us-east-1")
    _put(after, "events")
    assert delay.calls == 2  # the hook left with the block


def test_concurrent_calls_overlap_their_waits(kinesis: Any) -> None:
    with kinesis_latency(1_000) as delay:  # a long wait, so four started together are seen waiting together
        client = boto3.client("kinesis", region_name="us-east-1")
        start = threading.Barrier(4, timeout=10)

        def put() -> None:
            start.wait()
            _put(client, "events")

        threads = [threading.Thread(target=put) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert delay.calls == 4
    assert delay.most_waiting >= 2  # the waits overlapped (sleep releases the interpreter lock)


def test_dynamodb_delay_and_counts_stay_on_their_client(aws: None) -> None:
    delayed = boto3.client("dynamodb", region_name="us-east-1")
    other = boto3.client("dynamodb", region_name="us-east-1")
    delay, counter = CallDelay(0.0), OperationCounter()
    delay_calls(delayed, delay)
    attach(delayed, DYNAMODB_EVENT, counter, "count")
    delayed.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    delayed.put_item(TableName="t", Item={"id": {"S": "a"}})
    other.get_item(TableName="t", Key={"id": {"S": "a"}})
    assert delay.calls == 2
    assert counter.calls == {"CreateTable": 1, "PutItem": 1}


def test_sql_proxy_counts_three_round_trips_per_pg8000_statement(database_url: str) -> None:
    with latency_proxy(database_url, RTT_MS) as proxy:
        connection = DatabaseSettings.from_url(proxy.url).connect()
        try:
            before = proxy.round_trips
            rows = connection.run("SELECT CAST(:x AS int) + 1", x=41)
            trips = proxy.round_trips - before
            assert rows == [[42]]
            assert connection.run("SELECT count(*) FROM generate_series(1, 50000)") == [[50_000]]
        finally:
            connection.close()
    assert proxy.url.split("@")[1].startswith("127.0.0.1:")
    assert trips == 3  # pg8000: parse, describe, bind + execute
    assert not any(thread.name.startswith("pgproxy") and thread.is_alive() for thread in threading.enumerate())


def test_one_trip_connection_sends_a_statement_in_one_round_trip(database_url: str) -> None:
    hostile = "x'); DROP TABLE submission_ledger; --"
    with latency_proxy(database_url, 0.0) as proxy:
        connection = connect_one_trip(DatabaseSettings.from_url(proxy.url))
        try:
            before = proxy.round_trips
            rows = connection.run(
                "SELECT CAST(:x AS int) + 1, CAST(:text AS text), CAST(:none AS text), CAST(:ids AS uuid[])",
                x=41,
                text=hostile,
                none=None,
                ids=["5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"],
            )
            assert proxy.round_trips - before == 1
            assert rows[0][:3] == [42, hostile, None]  # the value travelled as a bound parameter, intact
            assert str(rows[0][3][0]) == "5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"
            with pytest.raises(Exception, match="invalid input syntax for type integer"):
                connection.run("SELECT CAST(:x AS int)", x="not a number")
            assert connection.run("SELECT CAST(:x AS int) * 2", x=21) == [[42]]  # still in step after the error
            assert connection.run("SELECT 1") == [[1]]  # no parameters: pg8000's simple query
        finally:
            connection.close()


def test_ledger_statements_cost_three_trips_with_pg8000_and_one_with_the_prototype(clean_database: str) -> None:
    submissions = make_batch(50, seed=11).submissions
    today = wire_round_trips(clean_database, submissions, one_trip=False)
    assert (today.claim, today.outcome) == (3, 3)
    prototype = wire_round_trips(clean_database, make_batch(50, seed=12).submissions, one_trip=True)
    assert (prototype.claim, prototype.outcome) == (1, 1)
