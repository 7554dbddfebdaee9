"""The modelled network's two delays really apply, to the clients they must reach, and go away after."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3

from bench.latency import kinesis_latency
from bench.pgproxy import latency_proxy
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.runtime import kinesis_client

RTT_MS = 40.0
_RECORD: list[dict[str, Any]] = [{"Data": b"x", "PartitionKey": "k"}]


def _put_seconds(client: Any, stream: str) -> float:
    started = time.perf_counter()
    response = client.put_records(StreamName=stream, Records=_RECORD)
    assert response["FailedRecordCount"] == 0  # moto still answers behind the delay
    return time.perf_counter() - started


def test_putrecords_waits_on_every_client_created_inside(kinesis: Any) -> None:
    with kinesis_latency(RTT_MS) as delay:
        ours = boto3.client("kinesis", region_name="us-east-1")
        handlers = kinesis_client()  # the handler's own client, built by the runtime
        assert _put_seconds(ours, "events") >= RTT_MS / 1000
        assert _put_seconds(handlers, "events") >= RTT_MS / 1000
        ours.describe_stream_summary(StreamName="events")  # other operations are not delayed
        assert delay.calls == 2
    after = boto3.client("kinesis", region_name="us-east-1")
    _put_seconds(after, "events")
    assert delay.calls == 2  # the hook left with the block


def test_concurrent_calls_overlap_their_waits(kinesis: Any) -> None:
    with kinesis_latency(1_000) as delay:  # a long wait, so four started together are seen waiting together
        client = boto3.client("kinesis", region_name="us-east-1")
        start = threading.Barrier(4, timeout=10)

        def put() -> None:
            start.wait()
            _put_seconds(client, "events")

        threads = [threading.Thread(target=put) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert delay.calls == 4
    assert delay.most_waiting >= 2  # the waits overlapped (sleep releases the interpreter lock)


def test_sql_proxy_adds_one_rtt_per_round_trip(database_url: str) -> None:
    with latency_proxy(database_url, RTT_MS) as proxy:
        connection = DatabaseSettings.from_url(proxy.url).connect()
        try:
            before = proxy.round_trips
            started = time.perf_counter()
            rows = connection.run("SELECT CAST(:x AS int) + 1", x=41)
            elapsed = time.perf_counter() - started
            trips = proxy.round_trips - before
            assert rows == [[42]]
            assert connection.run("SELECT count(*) FROM generate_series(1, 50000)") == [[50_000]]
        finally:
            connection.close()
    assert proxy.url.split("@")[1].startswith("127.0.0.1:")
    assert trips == 3  # pg8000: parse, describe, bind + execute
    assert elapsed >= trips * RTT_MS / 1000
    assert not any(thread.name.startswith("pgproxy") and thread.is_alive() for thread in threading.enumerate())
