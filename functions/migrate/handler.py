"""Migration custom resource: schema migrations and the app database user, on every stack update.

Invoked by the CDK Provider framework (which answers CloudFormation) before the functions that use
the ledger are created or updated. It signs in to RDS Proxy as the admin with an IAM token, then:

1. applies the versioned SQL migrations (``apply_migrations``: advisory-locked, idempotent);
2. creates the app user if missing and sets its password from the Secrets Manager secret the proxy
   uses for it, sent as a SCRAM-SHA-256 verifier so the plain password never reaches the server (or
   its statement log);
3. grants the app user exactly what the code needs: SELECT, INSERT, UPDATE, DELETE on the ledger
   tables, and nothing on ``schema_migrations``.

Every step is safe to repeat. A delete leaves the database alone (the instance keeps a snapshot).

What keeps a deploy from getting stuck:

* **Rollback to older code.** When an update fails, CloudFormation sends this resource an update back
  to the previous properties. Migrations only add, so the older code's schema is already in place:
  a request whose ``AssetHash`` is not this function's own (this newer code answering for older code)
  or whose ``SchemaVersion`` is lower than the one it replaces succeeds without touching the database.
  Otherwise a database failure during the rollback would leave the stack ``UPDATE_ROLLBACK_FAILED``.
* **The first connection** after the instance and proxy are created can fail for a few minutes while
  the proxy registers its target: it is retried with exponential backoff within the invocation.
* **Timeouts of its own.** The session gets a ``statement_timeout`` long enough for a migration and a
  short ``lock_timeout``: a migration that waits for a lock held by live traffic gives up quickly and
  is retried a few times, instead of queueing every later statement behind it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pg8000.native
import scramp

from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations

PHYSICAL_ID = "ledger-migrations"
APP_TABLES = ("submission_ledger", "processor_heartbeat")
LOCK_NOT_AVAILABLE = "55P03"
_SCRAM_ITERATIONS = 4096
_SCRAM = scramp.ScramMechanism("SCRAM-SHA-256")

Connect = Callable[[], pg8000.native.Connection]


@dataclass(frozen=True)
class MigrationTimeouts:
    """How long the migration waits, and for what."""

    connect_retry_seconds: float = 300.0
    """How long the first connection is retried (the proxy may still be registering its target)."""
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    statement_timeout_ms: int = 120_000
    """A migration statement may run this long (the processor's statements get a few seconds)."""
    lock_timeout_ms: int = 5_000
    """Waiting for a lock longer than this fails the attempt, which is retried."""
    lock_attempts: int = 5
    reserve_seconds: float = 10.0
    """Kept in hand at the end of the invocation to answer CloudFormation."""

    @property
    def socket_timeout_seconds(self) -> float:
        """The client's socket timeout: above the server's statement timeout, so the server decides."""
        return self.statement_timeout_ms / 1000 + 10


class MigrationFailed(RuntimeError):
    """The migration could not be applied in the time the invocation had; the deploy fails and rolls back."""


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = _SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (what ``ALTER ROLE ... PASSWORD`` accepts).

    The keys come from ``scramp`` (pg8000's own SCRAM library), with a random 16-byte salt by default.
    """
    salt, stored_key, server_key, iterations = _SCRAM.make_auth_info(
        password, iteration_count=iterations, salt=salt or secrets.token_bytes(16)
    )

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def set_up_database(connection: pg8000.native.Connection, *, app_user: str, app_password: str) -> list[int]:
    """Apply the migrations, then create or update the app user and its grants; return versions applied."""
    applied = apply_migrations(connection)
    user = pg8000.native.identifier(app_user)
    exists = connection.run("SELECT 1 FROM pg_roles WHERE rolname = :name", name=app_user)
    if not exists:
        connection.run(f"CREATE ROLE {user} LOGIN")
    verifier = pg8000.native.literal(scram_verifier(app_password))
    connection.run(f"ALTER ROLE {user} WITH LOGIN PASSWORD {verifier}")
    database = pg8000.native.identifier(connection.run("SELECT current_database()")[0][0])
    connection.run(f"GRANT CONNECT ON DATABASE {database} TO {user}")
    connection.run(f"GRANT USAGE ON SCHEMA public TO {user}")
    tables = ", ".join(pg8000.native.identifier(table) for table in APP_TABLES)
    connection.run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {user}")
    return applied


def app_password(secret_arn: str) -> str:
    """The app user's password from its Secrets Manager secret (``{"username", "password"}``)."""
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    password: str = json.loads(secret["SecretString"])["password"]
    return password


def rollback_reason(event: Mapping[str, Any], own_asset_hash: str | None) -> str | None:
    """Why this request is a rollback to older code that needs no database work, or None.

    CloudFormation passes custom resource properties as strings, so versions are parsed here.
    """
    if event.get("RequestType") != "Update":
        return None
    requested = event.get("ResourceProperties") or {}
    previous = event.get("OldResourceProperties") or {}
    asset = requested.get("AssetHash")
    if asset and own_asset_hash and asset != own_asset_hash:
        return f"the request is for code {asset[:12]}, this function runs {own_asset_hash[:12]}: a rollback"
    try:
        version, old_version = int(requested["SchemaVersion"]), int(previous["SchemaVersion"])
    except (KeyError, TypeError, ValueError):
        return None
    if version < old_version:
        return f"schema version {version} replaces {old_version}: a rollback, and migrations only add"
    return None


def connect_with_retry(
    connect: Connect,
    *,
    deadline: float,
    timeouts: MigrationTimeouts,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> pg8000.native.Connection:
    """Open the first connection, retrying any failure with exponential backoff until ``deadline``."""
    delay = timeouts.first_backoff_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return connect()
        except Exception as error:
            left = deadline - clock()
            if left <= delay:
                raise MigrationFailed(
                    f"no database connection after {attempt} attempts: {type(error).__name__}: {error}"
                ) from error
            log("database not reachable yet, retrying", attempt=attempt, error=type(error).__name__, wait=delay)
            sleep(delay)
            delay = min(delay * 2, timeouts.max_backoff_seconds)


def _lock_not_available(error: BaseException) -> bool:
    return (
        isinstance(error, pg8000.native.DatabaseError)
        and bool(error.args)
        and isinstance(error.args[0], dict)
        and error.args[0].get("C") == LOCK_NOT_AVAILABLE
    )


def migrate(
    connect: Connect,
    *,
    app_user: str,
    password: str,
    deadline: float,
    timeouts: MigrationTimeouts = MigrationTimeouts(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """Connect (with retries), set the session's timeouts, and set up the database; retry lock timeouts."""
    connection = connect_with_retry(connect, deadline=deadline, timeouts=timeouts, clock=clock, sleep=sleep)
    try:
        # Session settings through set_config, so the SQL stays constant and the values are parameters.
        connection.run("SELECT set_config('statement_timeout', :ms, false)", ms=f"{timeouts.statement_timeout_ms}ms")
        connection.run("SELECT set_config('lock_timeout', :ms, false)", ms=f"{timeouts.lock_timeout_ms}ms")
        delay = timeouts.first_backoff_seconds
        for attempt in range(1, timeouts.lock_attempts + 1):
            try:
                return set_up_database(connection, app_user=app_user, app_password=password)
            except pg8000.native.DatabaseError as error:
                if not _lock_not_available(error) or attempt == timeouts.lock_attempts or deadline - clock() <= delay:
                    raise
                log("a lock is held elsewhere, retrying", attempt=attempt, wait=delay)
                sleep(delay)
                delay = min(delay * 2, timeouts.max_backoff_seconds)
        raise AssertionError("unreachable: the last attempt returns or raises")
    finally:
        connection.close()


def log(message: str, **fields: Any) -> None:
    """One JSON line in the function's log (the migration runs outside the processor's logger)."""
    print(json.dumps({"message": message, **fields}))


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Provider framework entry point: Create and Update migrate; Delete and rollbacks do nothing."""
    physical_id = event.get("PhysicalResourceId", PHYSICAL_ID)
    if event.get("RequestType") == "Delete":
        return {"PhysicalResourceId": physical_id}
    reason = rollback_reason(event, os.environ.get("ASSET_HASH"))
    if reason:
        log("ledger left as it is", reason=reason)
        return {"PhysicalResourceId": physical_id, "Data": {"Applied": "", "Skipped": reason}}
    timeouts = MigrationTimeouts()
    remaining = context.get_remaining_time_in_millis() / 1000 if context else timeouts.connect_retry_seconds
    deadline = time.monotonic() + min(timeouts.connect_retry_seconds, remaining - timeouts.reserve_seconds)
    settings = dataclasses.replace(DatabaseSettings.from_env(), timeout_seconds=timeouts.socket_timeout_seconds)
    applied = migrate(
        settings.connect,
        app_user=os.environ["APP_DB_USER"],
        password=app_password(os.environ["APP_SECRET_ARN"]),
        deadline=deadline,
        timeouts=timeouts,
    )
    log("ledger migrated", applied=applied)
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Applied": ",".join(map(str, applied))}}
