"""The modelled network's delays reach the clients they must and go away after; the SQL proxy counts round
trips on the wire; the benchmark's comparison connections are pg8000's own exchange."""

from __future__ import annotations

import socket
import threading
from typing import Any

import boto3
import pg8000.native

from bench.latency import DYNAMODB_EVENT, CallDelay, OperationCounter, attach, delay_calls, kinesis_latency
from bench.pg8000_default import nodelay_connect, pg8000_default_connect, product_connect, wire_round_trips
from bench.workload import make_batch
from devkit.pgproxy import latency_proxy
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
        connection = pg8000_default_connect(proxy.url)()
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


def test_ledger_statements_cost_one_trip_on_the_ledgers_connection_and_three_on_pg8000s(clean_database: str) -> None:
    ours = wire_round_trips(clean_database, make_batch(50, seed=11).submissions, product_connect)
    assert (ours.claim, ours.outcome) == (1, 1)
    default = wire_round_trips(clean_database, make_batch(50, seed=12).submissions, pg8000_default_connect)
    assert (default.claim, default.outcome) == (3, 3)
    nodelay = wire_round_trips(clean_database, make_batch(50, seed=13).submissions, nodelay_connect)
    assert (nodelay.claim, nodelay.outcome) == (3, 3)  # the socket option alone changes no exchange


def test_the_comparison_connections_differ_from_the_ledgers_only_where_intended(database_url: str) -> None:
    connections = [connect() for connect in (pg8000_default_connect(database_url), nodelay_connect(database_url))]
    try:
        default, nodelay = connections
        assert type(default) is type(nodelay) is pg8000.native.Connection  # pg8000's own exchange
        if default._usock.family in (socket.AF_INET, socket.AF_INET6):  # a Unix socket has no Nagle
            assert default._usock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            assert nodelay._usock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert default.run("SELECT CAST(:x AS int) + 1", x=41) == nodelay.run("SELECT 42") == [[42]]
    finally:
        for connection in connections:
            connection.close()
