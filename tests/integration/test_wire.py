"""The ledger's connection on the wire, against a real PostgreSQL: one round trip per statement, counted
by a loopback proxy; every kind of value intact; errors leave the connection in step; a connection lost
mid-exchange is recognised as one, and the ledger reconnects."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pg8000.native
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.pgproxy import LatencyProxy, frontend_messages, latency_proxy
from devkit.postgres import fresh_database
from health.operations import SubmissionLookup
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings, is_connection_failure
from telemetry_adapter.ledger.migrations import apply_migrations, available_migrations
from telemetry_adapter.ledger.repository import ClaimRequest, ClaimStatus, Ledger
from telemetry_adapter.ledger.wire import OneTripConnection, set_nodelay

# Every character PostgreSQL's text can hold: no NUL, no lone surrogate (UTF-8 cannot encode one).
STORABLE_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_POLLS = 400
_POLL_SECONDS = 0.05


def request(events: int = 3) -> ClaimRequest:
    submission_id = str(uuid.uuid4())
    return ClaimRequest(submission_id, str(uuid.uuid4()), hashlib.sha256(submission_id.encode()).digest(), events)


@pytest.fixture
def proxy(clean_database: str) -> Iterator[LatencyProxy]:
    """A counting proxy (no delay) in front of the clean database."""
    with latency_proxy(clean_database, 0.0) as started:
        yield started


@pytest.fixture(scope="module")
def connection(database_url: str) -> Iterator[OneTripConnection]:
    """One ledger connection for a module's worth of statements (hypothesis reuses it across examples)."""
    opened = DatabaseSettings.from_url(database_url).connect()
    yield opened
    opened.close()


def trips(proxy: LatencyProxy, action: Any) -> int:
    """Round trips ``action`` cost on the wire."""
    before = proxy.round_trips
    action()
    return proxy.round_trips - before


def test_every_user_of_the_settings_gets_the_one_trip_connection_with_nodelay(database_url: str) -> None:
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        assert isinstance(connection, OneTripConnection)
        sock = connection._usock
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        connection.close()


def test_nodelay_leaves_a_unix_socket_alone() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        set_nodelay(left)  # no such option on a Unix socket: nothing set, nothing raised
        left.sendall(b"x")
        assert right.recv(1) == b"x"


def test_every_ledger_statement_is_one_round_trip(proxy: LatencyProxy) -> None:
    provider = ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect)
    ledger = Ledger(provider)
    item = request()
    try:
        provider.get()  # the start-up exchange is not a statement
        statements = {
            "claim": lambda: ledger.claim([item], owner="w1", lease_seconds=60),
            "outcome": lambda: ledger.record_outcome({item.submission_id: 3}, owner="w1", worker="p", batch_size=1),
            "heartbeat": lambda: ledger.record_heartbeat(worker="p", batch_size=0),
            "clean-up": lambda: ledger.delete_expired_chunk(14, limit=100),
            "stale heartbeats": lambda: ledger.delete_stale_heartbeats(14),
            "schema": ledger.missing_tables,
            "heartbeat age": ledger.last_heartbeat_age_seconds,  # no parameters: the simple query
            "ping": ledger.ping,
            "submission lookup": lambda: SubmissionLookup(provider).find(item.submission_id),
        }
        assert {name: trips(proxy, action) for name, action in statements.items()} == dict.fromkeys(statements, 1)
        assert ledger.statements == len(statements) - 1  # the lookup is the health function's, not the ledger's
        assert provider.connects == 1
    finally:
        provider.discard()


def test_a_ten_thousand_row_claim_and_its_outcome_are_one_round_trip_each(proxy: LatencyProxy) -> None:
    provider = ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect)
    ledger = Ledger(provider)
    batch = [request(events=1 + n % 7) for n in range(10_000)]
    try:
        provider.get()
        claimed: dict[Any, Any] = {}
        recorded: set[str] = set()
        outcome = {item.submission_id: item.event_count for item in batch}

        def claim_all() -> None:
            claimed.update(ledger.claim(batch, owner="w1", lease_seconds=60))

        def record() -> None:
            recorded.update(ledger.record_outcome(outcome, owner="w1", worker="p", batch_size=len(batch)))

        assert trips(proxy, claim_all) == 1
        assert len(claimed) == 10_000
        assert {claim.status for claim in claimed.values()} == {ClaimStatus.CLAIMED}
        assert trips(proxy, record) == 1
        assert recorded == set(outcome)
        again = ledger.claim(batch[:3], owner="w2", lease_seconds=60)
        assert {claim.status for claim in again.values()} == {ClaimStatus.COMPLETED}
    finally:
        provider.discard()


def test_every_kind_of_value_the_ledger_sends_round_trips(connection: OneTripConnection) -> None:
    ids = [uuid.UUID(int=1), "5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"]
    digests = [b"", bytes(range(256)), hashlib.sha256(b"x").digest()]
    integers = [0, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)]
    rows = connection.run(
        "SELECT CAST(:none AS text), CAST(:ids AS uuid[]), CAST(:digests AS bytea[]), CAST(:integers AS bigint[]),"
        " CAST(:count AS integer), CAST(:seconds AS float8), CAST(:flag AS boolean), CAST(:empty AS text[]),"
        " CAST(:holes AS text[])",
        none=None,
        ids=ids,
        digests=digests,
        integers=integers,
        count=10_000,
        seconds=60.5,
        flag=True,
        empty=[],
        holes=[None, 'quote " and backslash \\', "{braces,comma}"],
    )
    assert rows == [
        [
            None,
            [uuid.UUID(int=1), uuid.UUID("5d9f1c2e-8a3b-4c1d-9e2f-0a1b2c3d4e5f")],
            digests,
            integers,
            10_000,
            60.5,
            True,
            [],
            [None, 'quote " and backslash \\', "{braces,comma}"],
        ]
    ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=STORABLE_TEXT)
def test_any_storable_text_round_trips_intact(connection: OneTripConnection, text: str) -> None:
    rows = connection.run("SELECT CAST(:text AS text), char_length(CAST(:text AS text))", text=text)
    assert rows == [[text, len(text)]]


def test_a_failed_statement_leaves_the_connection_in_step(proxy: LatencyProxy) -> None:
    connection = DatabaseSettings.from_url(proxy.url).connect()
    failures: dict[str, tuple[str, dict[str, Any]]] = {
        "42P01": ("SELECT * FROM no_such_table WHERE id = CAST(:x AS int)", {"x": 1}),  # at Parse
        "22P02": ("SELECT CAST(:x AS int)", {"x": "not a number"}),  # at Bind
        "22012": ("SELECT CAST(:x AS int) / 0", {"x": 1}),  # at Execute
        "22021": ("SELECT CAST(:x AS text)", {"x": "nul \x00 inside"}),  # text PostgreSQL cannot hold
    }
    try:
        for sqlstate, (sql, params) in failures.items():
            before = proxy.round_trips
            with pytest.raises(pg8000.native.DatabaseError) as raised:
                connection.run(sql, **params)
            assert proxy.round_trips - before == 1, sqlstate
            assert raised.value.args[0]["C"] == sqlstate
            assert not is_connection_failure(raised.value)  # the ledger keeps this connection
            assert connection.run("SELECT CAST(:x AS int) * 2", x=21) == [[42]], sqlstate  # the next is in step
        with pytest.raises(UnicodeEncodeError):  # a lone surrogate cannot be encoded: nothing is sent
            trips(proxy, lambda: connection.run("SELECT CAST(:x AS text)", x="\ud800"))
        assert connection.run("SELECT CAST(:x AS text)", x="still in step") == [["still in step"]]
    finally:
        connection.close()


def test_a_backend_terminated_mid_statement_is_a_connection_failure(clean_database: str) -> None:
    settings_ = DatabaseSettings.from_url(clean_database)
    victim, admin = settings_.connect(timeout_seconds=30), settings_.connect()
    pid = victim.run("SELECT pg_backend_pid()")[0][0]
    terminated = threading.Event()

    def terminate_once_running() -> None:
        for _ in range(_POLLS):  # bounded: the statement below starts at once
            running = admin.run(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = CAST(:pid AS int) AND state = 'active'"
                " AND query LIKE 'SELECT pg_sleep%'",
                pid=pid,
            )
            if running[0][0]:
                admin.run("SELECT pg_terminate_backend(CAST(:pid AS int))", pid=pid)
                terminated.set()
                return
            time.sleep(_POLL_SECONDS)

    killer = threading.Thread(target=terminate_once_running, name="terminate-backend")
    killer.start()
    try:
        with pytest.raises(Exception) as raised:
            victim.run("SELECT pg_sleep(CAST(:seconds AS float8))", seconds=25)
    finally:
        killer.join(_POLLS * _POLL_SECONDS + 5)
        admin.close()
    assert terminated.is_set()
    assert is_connection_failure(raised.value)


def test_a_connection_cut_mid_exchange_is_a_connection_failure_and_the_ledger_reconnects(
    proxy: LatencyProxy,
) -> None:
    connection = DatabaseSettings.from_url(proxy.url).connect()
    proxy.cut_next_request()
    with pytest.raises(pg8000.native.InterfaceError) as raised:
        connection.run("SELECT CAST(:x AS int)", x=1)
    assert is_connection_failure(raised.value)
    assert proxy.cuts == 1

    provider = ConnectionProvider(DatabaseSettings.from_url(proxy.url).connect)
    ledger = Ledger(provider)
    item = request()
    try:
        provider.get()
        proxy.cut_next_request()
        claims = ledger.claim([item], owner="w1", lease_seconds=60)  # cut, reconnected, sent again
        assert claims[item.key].status is ClaimStatus.CLAIMED
        assert (proxy.cuts, provider.connects, ledger.statements) == (2, 2, 2)
    finally:
        provider.discard()


def test_the_simple_query_protocol_and_the_migrations_are_pg8000s_own(database_url: str) -> None:
    with fresh_database(database_url, migrate=False) as empty, latency_proxy(empty, 0.0, record=True) as proxy:
        connection = DatabaseSettings.from_url(proxy.url).connect()
        try:
            assert proxy.sent is not None
            start = len(proxy.sent)
            assert connection.run("SELECT 1; SELECT 2") == [[1], [2]]  # two statements: only the simple query
            assert [code for code, _ in frontend_messages(proxy.sent[start:])] == [b"Q"]
            start = len(proxy.sent)
            applied = apply_migrations(connection)
            assert applied == [migration.version for migration in available_migrations()]
            sent = frontend_messages(proxy.sent[start:])
            scripts = [body for code, body in sent if code == b"Q" and b"CREATE TABLE submission_ledger" in body]
            assert len(scripts) == 1  # the first migration's script went whole, by the simple query protocol
            assert not any(b"submission_ledger" in body for code, body in sent if code == b"P")
            assert connection.run(
                "SELECT count(*) FROM submission_ledger WHERE event_count > CAST(:n AS int)", n=0
            ) == [[0]]
        finally:
            connection.close()


def test_copy_streams_through_the_one_trip_exchange(connection: OneTripConnection) -> None:
    connection.run("CREATE TEMPORARY TABLE copied (n integer, label text)")
    connection.run("COPY copied FROM STDIN", stream=io.StringIO("1\tone\n2\ttwo\n"))
    out = io.StringIO()
    connection.run("COPY copied TO STDOUT", stream=out)
    assert out.getvalue() == "1\tone\n2\ttwo\n"
    with pytest.raises(pg8000.native.DatabaseError):
        connection.run("COPY copied FROM STDIN", stream=io.StringIO("x\tbad\n"))
    assert connection.run("SELECT count(*) FROM copied WHERE n > CAST(:n AS int)", n=0) == [[2]]
