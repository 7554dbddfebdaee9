"""The ledger against a real PostgreSQL: claims, leases, conflicts, outcome, clean-up, migrations."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid

import pg8000.native
import pytest

from devkit.lambda_shapes import VirtualClock
from devkit.postgres import embedded_server, fresh_database, server_url_from_env
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations, available_migrations
from telemetry_adapter.ledger.repository import ClaimKey, ClaimRequest, ClaimStatus, Ledger


def request(events: int = 3, content: str = "a", submission_id: str | None = None) -> ClaimRequest:
    return ClaimRequest(
        submission_id or str(uuid.uuid4()), str(uuid.uuid4()), hashlib.sha256(content.encode()).digest(), events
    )


def test_new_submissions_are_claimed_from_zero(ledger: Ledger) -> None:
    batch = [request() for _ in range(5)]
    claims = ledger.claim(batch, owner="w1", lease_seconds=60)
    assert {claims[r.key].status for r in batch} == {ClaimStatus.CLAIMED}
    assert {claims[r.key].published for r in batch} == {0}


def test_completed_submission_is_a_duplicate(ledger: Ledger) -> None:
    item = request(events=3)
    ledger.claim([item], owner="w1", lease_seconds=60)
    assert ledger.record_outcome({item.submission_id: 3}, owner="w1", worker="p", batch_size=1) == {item.submission_id}
    assert ledger.claim([item], owner="w2", lease_seconds=60)[item.key].status is ClaimStatus.COMPLETED


def test_different_content_is_a_conflict(ledger: Ledger) -> None:
    first = request(content="original")
    ledger.claim([first], owner="w1", lease_seconds=60)
    ledger.record_outcome({first.submission_id: 3}, owner="w1", worker="p", batch_size=1)
    other = request(content="tampered", submission_id=first.submission_id)
    assert ledger.claim([other], owner="w2", lease_seconds=60)[other.key].status is ClaimStatus.CONFLICT


def test_live_lease_of_another_worker_is_busy(ledger: Ledger) -> None:
    item = request()
    ledger.claim([item], owner="w1", lease_seconds=60)
    assert ledger.claim([item], owner="w2", lease_seconds=60)[item.key].status is ClaimStatus.BUSY


def test_expired_lease_is_taken_over_at_the_published_prefix(ledger: Ledger, clean_database: str) -> None:
    item = request(events=5)
    ledger.claim([item], owner="w1", lease_seconds=60)
    ledger.record_outcome({item.submission_id: 2}, owner="w1", worker="p", batch_size=1)  # releases the lease
    ledger.claim([item], owner="w1", lease_seconds=60)
    connection = DatabaseSettings.from_url(clean_database).connect()
    connection.run("UPDATE submission_ledger SET lease_expires_at = now() - interval '1 second'")
    connection.close()
    claim = ledger.claim([item], owner="w2", lease_seconds=60)[item.key]
    assert (claim.status, claim.published) == (ClaimStatus.CLAIMED, 2)
    # The old owner's late outcome no longer applies: the lease is not its own any more.
    assert ledger.record_outcome({item.submission_id: 5}, owner="w1", worker="p", batch_size=1) == set()


def test_claim_is_idempotent_for_its_owner(ledger: Ledger) -> None:
    """A claim re-sent after a lost answer must not lock its own sender out."""
    item = request()
    ledger.claim([item], owner="w1", lease_seconds=60)
    assert ledger.claim([item], owner="w1", lease_seconds=60)[item.key].status is ClaimStatus.CLAIMED


def test_a_claim_sent_again_keeps_a_second_content_of_one_id_waiting(ledger: Ledger) -> None:
    """Re-sent after a lost answer, a claim finds the row its first attempt inserted for the batch's
    first content: the second content is still busy (waits for a redelivery), never a conflict with a
    copy of its own batch."""
    original = request(events=4, content="original")
    tampered = request(events=4, content="tampered", submission_id=original.submission_id)
    for _ in range(2):  # the first attempt, then its re-send
        claims = ledger.claim([original, tampered], owner="w1", lease_seconds=60)
        assert (claims[original.key].status, claims[tampered.key].status) == (ClaimStatus.CLAIMED, ClaimStatus.BUSY)


def test_an_outcome_sent_again_reports_the_rows_its_first_attempt_wrote(ledger: Ledger, clean_database: str) -> None:
    finished, stopped = request(events=3), request(events=5)
    ledger.claim([finished, stopped], owner="w1", lease_seconds=60)
    progress = {finished.submission_id: 3, stopped.submission_id: 2}
    for _ in range(2):  # the first attempt, then its re-send (the first answer lost after commit)
        assert ledger.record_outcome(progress, owner="w1", worker="p", batch_size=2) == set(progress)
    connection = DatabaseSettings.from_url(clean_database).connect()
    rows = connection.run(
        "SELECT published_count, completed_at IS NOT NULL, lease_owner FROM submission_ledger ORDER BY 1"
    )
    connection.close()
    assert rows == [[2, False, None], [3, True, None]]


def test_an_outcome_never_reports_a_row_another_worker_holds_or_recorded_less_of(
    ledger: Ledger, clean_database: str
) -> None:
    """Fencing: w1's lease lapsed and w2 took its submissions over. Of those, w1's late outcome reports
    only one nobody holds any more whose recorded prefix already covers w1's progress (w2 finished it):
    never one w2 still publishes, nor one recorded short of what w1 published (w1 wrote nothing there)."""
    publishing, behind, finished = request(events=5), request(events=5), request(events=5)
    ledger.claim([publishing, behind, finished], owner="w1", lease_seconds=60)
    connection = DatabaseSettings.from_url(clean_database).connect()
    connection.run("UPDATE submission_ledger SET lease_expires_at = now() - interval '1 second'")
    ledger.claim([publishing, behind, finished], owner="w2", lease_seconds=60)
    progress = {behind.submission_id: 1, finished.submission_id: 5}
    assert ledger.record_outcome(progress, owner="w2", worker="p", batch_size=2) == set(progress)
    late = {publishing.submission_id: 3, behind.submission_id: 3, finished.submission_id: 3}
    assert ledger.record_outcome(late, owner="w1", worker="p", batch_size=3) == {finished.submission_id}
    rows = connection.run("SELECT submission_id::text, published_count, lease_owner FROM submission_ledger")
    connection.close()
    assert {row[0]: (row[1], row[2]) for row in rows} == {
        publishing.submission_id: (0, "w2"),
        behind.submission_id: (1, None),
        finished.submission_id: (5, None),
    }


def test_outcome_keeps_the_longest_prefix_and_completes(ledger: Ledger, clean_database: str) -> None:
    item = request(events=4)
    ledger.claim([item], owner="w1", lease_seconds=60)
    ledger.record_outcome({item.submission_id: 3}, owner="w1", worker="p", batch_size=1)
    ledger.claim([item], owner="w2", lease_seconds=60)
    ledger.record_outcome({item.submission_id: 1}, owner="w2", worker="p", batch_size=1)
    connection = DatabaseSettings.from_url(clean_database).connect()
    rows = connection.run("SELECT published_count, completed_at IS NULL, lease_owner FROM submission_ledger")
    assert rows == [[3, True, None]]
    ledger.claim([item], owner="w3", lease_seconds=60)
    ledger.record_outcome({item.submission_id: 4}, owner="w3", worker="p", batch_size=1)
    assert connection.run("SELECT completed_at IS NOT NULL FROM submission_ledger") == [[True]]
    connection.close()


def test_zero_event_submission_completes(ledger: Ledger) -> None:
    item = request(events=0)
    ledger.claim([item], owner="w1", lease_seconds=60)
    ledger.record_outcome({item.submission_id: 0}, owner="w1", worker="p", batch_size=1)
    assert ledger.claim([item], owner="w2", lease_seconds=60)[item.key].status is ClaimStatus.COMPLETED


def test_round_trips_do_not_grow_with_the_batch(ledger: Ledger) -> None:
    for size in (1, 10, 1_000):
        before = ledger.statements
        batch = [request() for _ in range(size)]
        claims = ledger.claim(batch, owner="w", lease_seconds=60)
        ledger.record_outcome({r.submission_id: 3 for r in batch}, owner="w", worker="p", batch_size=size)
        assert len(claims) == size
        assert ledger.statements - before == 2


def test_heartbeat_is_written_by_the_outcome(ledger: Ledger) -> None:
    assert ledger.last_heartbeat_age_seconds() is None
    ledger.record_outcome({}, owner="w", worker="p", batch_size=0)
    age = ledger.last_heartbeat_age_seconds()
    assert age is not None
    assert 0 <= age < 60


def test_cleanup_deletes_only_old_rows_without_a_live_lease(ledger: Ledger, clean_database: str) -> None:
    old, old_leased, recent = request(), request(), request()
    ledger.claim([old, old_leased, recent], owner="w", lease_seconds=600)
    ledger.record_outcome({old.submission_id: 3, recent.submission_id: 3}, owner="w", worker="p", batch_size=3)
    connection = DatabaseSettings.from_url(clean_database).connect()
    connection.run(
        "UPDATE submission_ledger SET first_seen_at = now() - interval '20 days'"
        " WHERE submission_id = ANY(CAST(:ids AS uuid[]))",
        ids=[old.submission_id, old_leased.submission_id],
    )
    assert ledger.delete_expired_chunk(14, limit=100) == 1
    remaining = {row[0] for row in connection.run("SELECT submission_id::text FROM submission_ledger")}
    connection.close()
    assert remaining == {old_leased.submission_id, recent.submission_id}


def test_two_workers_claiming_the_same_batch_at_once_split_it(clean_database: str) -> None:
    batch = [request() for _ in range(300)]
    results: dict[str, dict[ClaimKey, ClaimStatus]] = {}
    barrier = threading.Barrier(2)

    def work(owner: str) -> None:
        ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(clean_database).connect))
        ledger.ping()
        barrier.wait()
        results[owner] = {k: v.status for k, v in ledger.claim(batch, owner=owner, lease_seconds=60).items()}

    threads = [threading.Thread(target=work, args=(owner,)) for owner in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for item in batch:
        statuses = sorted([results["a"][item.key], results["b"][item.key]])
        assert statuses == [ClaimStatus.BUSY, ClaimStatus.CLAIMED]


def test_ledger_reconnects_after_its_connection_was_killed(ledger: Ledger, clean_database: str) -> None:
    ledger.ping()
    admin = DatabaseSettings.from_url(clean_database).connect()
    killed = admin.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    admin.close()
    assert killed
    item = request()
    assert ledger.claim([item], owner="w", lease_seconds=60)[item.key].status is ClaimStatus.CLAIMED


def test_migrations_are_safe_twice_and_concurrently() -> None:
    with contextlib.ExitStack() as stack:
        server_url = server_url_from_env() or stack.enter_context(embedded_server())
        url = stack.enter_context(fresh_database(server_url, migrate=False))
        errors: list[BaseException] = []
        applied: list[list[int]] = []

        def migrate() -> None:
            connection = DatabaseSettings.from_url(url).connect()
            try:
                applied.append(apply_migrations(connection))
            except BaseException as error:  # collected for the assertion below
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=migrate) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        versions = [migration.version for migration in available_migrations()]
        assert sorted(applied, key=len) == [[], [], versions]
        connection = DatabaseSettings.from_url(url).connect()
        assert apply_migrations(connection) == []
        assert [row[0] for row in connection.run("SELECT version FROM schema_migrations ORDER BY 1")] == versions
        connection.close()


@pytest.mark.parametrize("bad", ["'; DROP TABLE submission_ledger; --", "w\\1", "\u00e9\u4e2d"])
def test_owner_strings_are_parameters(ledger: Ledger, bad: str) -> None:
    item = request()
    assert ledger.claim([item], owner=bad, lease_seconds=60)[item.key].status is ClaimStatus.CLAIMED
    assert ledger.record_outcome({item.submission_id: 3}, owner=bad, worker=bad, batch_size=1) == {item.submission_id}


def test_two_contents_of_one_id_are_decided_by_what_the_ledger_holds(ledger: Ledger) -> None:
    original = request(events=4, content="original")
    tampered = request(events=4, content="tampered", submission_id=original.submission_id)
    # Neither is recorded yet: the first is claimed, the second waits (busy), never a conflict.
    claims = ledger.claim([original, tampered], owner="w1", lease_seconds=0)
    assert (claims[original.key].status, claims[tampered.key].status) == (ClaimStatus.CLAIMED, ClaimStatus.BUSY)
    # Once the ledger holds the original (unfinished, lease expired), the order of the copies no longer matters.
    claims = ledger.claim([tampered, original], owner="w2", lease_seconds=60)
    assert (claims[original.key].status, claims[tampered.key].status) == (ClaimStatus.CLAIMED, ClaimStatus.CONFLICT)


def _deadlocks(url: str) -> int:
    """Deadlocks PostgreSQL detected in the database, once the sessions that took part have ended."""
    admin = DatabaseSettings.from_url(url).connect()
    try:
        for _ in range(100):  # a backend flushes its statistics as it exits: wait (bounded) for that
            others = admin.run(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )[0][0]
            if others == 0:
                break
            time.sleep(0.05)
        admin.run("SELECT pg_stat_clear_snapshot()")
        return int(admin.run("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")[0][0])
    finally:
        admin.close()


def test_two_workers_claiming_the_same_new_ids_in_reversed_order_never_deadlock(clean_database: str) -> None:
    before = _deadlocks(clean_database)
    errors: list[BaseException] = []
    for _ in range(4):
        batch = [request() for _ in range(5_000)]
        orders = {"a": batch, "b": batch[::-1]}
        barrier = threading.Barrier(2)

        def work(
            owner: str, orders: dict[str, list[ClaimRequest]] = orders, barrier: threading.Barrier = barrier
        ) -> None:
            provider = ConnectionProvider(DatabaseSettings.from_url(clean_database).connect)
            ledger = Ledger(provider)
            try:
                ledger.ping()
                barrier.wait()
                ledger.claim(orders[owner], owner=owner, lease_seconds=60)
            except Exception as error:  # collected: the assertion below names it
                errors.append(error)
            finally:
                provider.discard()

        threads = [threading.Thread(target=work, args=(owner,)) for owner in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert _deadlocks(clean_database) == before


def test_an_error_that_is_not_a_connection_failure_keeps_the_connection(clean_database: str) -> None:
    provider = ConnectionProvider(DatabaseSettings.from_url(clean_database).connect)
    ledger = Ledger(provider)
    item = request(events=2)
    ledger.claim([item], owner="w", lease_seconds=60)
    connection = provider.get()
    with pytest.raises(pg8000.native.DatabaseError, match="23514"):  # a prefix longer than the submission
        ledger.record_outcome({item.submission_id: 5}, owner="w", worker="p", batch_size=1)
    ledger.ping()
    assert provider.get() is connection


def test_a_connection_idle_longer_than_the_limit_is_replaced_before_use(clean_database: str) -> None:
    """After a long freeze, the network may have dropped the connection without telling either end:
    finding out by sending on it would cost a whole statement timeout."""
    clock = VirtualClock()
    provider = ConnectionProvider(
        DatabaseSettings.from_url(clean_database).connect, max_idle_seconds=300, clock=clock.now
    )
    ledger = Ledger(provider)
    ledger.ping()
    first = provider.get()
    clock.advance(299)
    ledger.ping()
    assert provider.get() is first
    clock.advance(301)
    ledger.ping()
    assert provider.get() is not first
