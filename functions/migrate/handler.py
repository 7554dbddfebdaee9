"""Migration custom resource: schema migrations and the database users, on every stack update.

Invoked by the CDK Provider framework (which answers CloudFormation) before the functions that use
the ledger are created or updated. It signs in to RDS Proxy as the admin with an IAM token, then:

1. applies the versioned SQL migrations (``apply_migrations``: advisory-locked, idempotent);
2. creates each user if missing and sets its password from the Secrets Manager secret the proxy uses
   for it, sent as a SCRAM-SHA-256 verifier so the plain password never reaches the server (or its
   statement log). The users: the app user (``APP_DB_USER``: processor and clean-up) and the health
   function's read-only user (``HEALTH_DB_USER``), whose URL may be public;
3. grants each user exactly what its functions need, on the ledger tables only (nothing on
   ``schema_migrations``): SELECT, INSERT, UPDATE, DELETE for the app user, SELECT alone for the
   health function's; every other table privilege is revoked, so a user's grants are what this
   module says, whatever they were before.

Every step is safe to repeat. A delete leaves the database alone (the instance keeps a snapshot).

What keeps a deploy from getting stuck:

* **Rollback to older code.** When an update fails, CloudFormation sends this resource an update back
  to the previous properties. Migrations only add, so the older code's schema is already in place.
  Which code answers depends on the order of the rollback: CloudFormation reverts resources in
  dependency order, so the migration function usually has its older code back already, and then the
  request's ``AssetHash`` is its own. So an update touches the database only when it asks for
  something the previous properties did not have: a higher ``SchemaVersion``, or a user or secret
  they did not name. A rollback never does, whichever code answers it; neither does a code-only
  change. Otherwise a database failure during the rollback would leave the stack
  ``UPDATE_ROLLBACK_FAILED``. (Were the database work run anyway, it would do no harm: the older
  code's migrations are all applied, and its users' passwords and grants are the ones in place.)
* **The first connection** after the instance and proxy are created can fail for a few minutes while
  the proxy registers its target: it is retried with exponential backoff for the whole invocation,
  less the time kept to answer CloudFormation. Each attempt waits a short connect timeout, not a
  statement timeout, so a network that drops packets costs seconds per attempt.
* **Timeouts of its own.** The session gets a ``statement_timeout`` long enough for a migration (cut
  to the time left when the connection came late) and a short ``lock_timeout``: a migration that
  waits for a lock held by live traffic gives up quickly and is retried a few times, instead of
  queueing every later statement behind it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pg8000.native
import scramp

from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.connection import DatabaseSettings, set_statement_timeout
from telemetry_adapter.ledger.migrations import apply_migrations

PHYSICAL_ID = "ledger-migrations"
APP_TABLES = ("submission_ledger", "processor_heartbeat")
WRITER = ("SELECT", "INSERT", "UPDATE", "DELETE")
READER = ("SELECT",)
LOCK_NOT_AVAILABLE = "55P03"
_SCRAM_ITERATIONS = 4096
_SCRAM = scramp.ScramMechanism("SCRAM-SHA-256")

Connect = Callable[[float], pg8000.native.Connection]
"""Opens a connection, waiting at most the given seconds (``DatabaseSettings.connect``)."""
NO_CONTEXT_SECONDS = 300.0
"""The time budget when there is no Lambda context (a local run)."""
MIN_STATEMENT_SECONDS = 1.0


@dataclass(frozen=True)
class MigrationTimeouts:
    """How long the migration waits, and for what."""

    connect_timeout_seconds: float = 10.0
    """One connection attempt (TCP, TLS, the IAM sign-in through the proxy). Short: attempts are
    retried until the deadline, and a network that drops packets must not eat it in a few of them."""
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    statement_timeout_ms: int = 120_000
    """A migration statement may run this long (the processor's statements get a few seconds)."""
    lock_timeout_ms: int = 5_000
    """Waiting for a lock longer than this fails the attempt, which is retried."""
    lock_attempts: int = 5
    reserve_seconds: float = 10.0
    """Kept in hand at the end of the invocation to answer CloudFormation."""
    socket_margin_seconds: float = 5.0
    """The client's socket waits this much longer than the server's statement timeout, so the server
    decides (with an error the log can name) unless the network is gone."""


def invocation_deadline(
    remaining_ms: float, timeouts: MigrationTimeouts, clock: Callable[[], float] = time.monotonic
) -> float:
    """When the migration must stop: the invocation's end, less the time kept to answer CloudFormation."""
    return clock() + remaining_ms / 1000 - timeouts.reserve_seconds


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


@dataclass(frozen=True)
class Role:
    """A database user the migration keeps: its name, its password (the one in the secret RDS Proxy
    signs in with), and whether it may write the ledger tables or only read them."""

    name: str
    password: str = dataclasses.field(repr=False)
    writes: bool

    @property
    def privileges(self) -> tuple[str, ...]:
        """Its privileges on the ledger tables, exactly."""
        return WRITER if self.writes else READER


def app_role(name: str, password: str) -> Role:
    """The processor's and the clean-up's user: reads and writes the ledger tables."""
    return Role(name, password, writes=True)


def reader_role(name: str, password: str) -> Role:
    """The health function's user: reads the ledger tables, nothing more."""
    return Role(name, password, writes=False)


def set_up_database(connection: pg8000.native.Connection, roles: Sequence[Role]) -> list[int]:
    """Apply the migrations, then create or update each role and its grants; return versions applied."""
    applied = apply_migrations(connection)
    for role in roles:
        _keep_role(connection, role)
    return applied


def _keep_role(connection: pg8000.native.Connection, role: Role) -> None:
    """Create ``role`` if missing, set its password, and make its table grants exactly ``role.privileges``.

    The privileges it must not have are revoked and the others granted, never all revoked first: the
    app user's statements keep running while a deploy migrates.
    """
    user = pg8000.native.identifier(role.name)
    if not connection.run("SELECT 1 FROM pg_roles WHERE rolname = :name", name=role.name):
        connection.run(f"CREATE ROLE {user} LOGIN")
    verifier = pg8000.native.literal(scram_verifier(role.password))
    connection.run(f"ALTER ROLE {user} WITH LOGIN PASSWORD {verifier}")
    database = pg8000.native.identifier(connection.run("SELECT current_database()")[0][0])
    connection.run(f"GRANT CONNECT ON DATABASE {database} TO {user}")
    connection.run(f"GRANT USAGE ON SCHEMA public TO {user}")
    tables = ", ".join(pg8000.native.identifier(table) for table in APP_TABLES)
    # Written out per kind, so every statement is constant but for quoted names (WRITER, READER).
    if role.writes:
        connection.run(f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON {tables} FROM {user}")
        connection.run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {user}")
    else:
        connection.run(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {tables} FROM {user}")
        connection.run(f"GRANT SELECT ON {tables} TO {user}")


def roles_from_env(env: Mapping[str, str], password: Callable[[str], str]) -> list[Role]:
    """The app user (``APP_DB_USER``, ``APP_SECRET_ARN``) and, when named, the health function's read-only
    user (``HEALTH_DB_USER``, ``HEALTH_SECRET_ARN``), with their passwords read by ``password(arn)``.

    A missing variable is a ConfigurationError naming it, checked before any secret is read.
    """
    needed = ["APP_DB_USER", "APP_SECRET_ARN"] + (["HEALTH_SECRET_ARN"] if env.get("HEALTH_DB_USER") else [])
    missing = [name for name in needed if not env.get(name, "").strip()]
    if missing:
        raise ConfigurationError(f"the migration needs {', '.join(missing)}")
    roles = [app_role(env["APP_DB_USER"].strip(), password(env["APP_SECRET_ARN"].strip()))]
    if env.get("HEALTH_DB_USER", "").strip():
        roles.append(reader_role(env["HEALTH_DB_USER"].strip(), password(env["HEALTH_SECRET_ARN"].strip())))
    return roles


def secret_password(secret_arn: str) -> str:
    """A database user's password from its Secrets Manager secret (``{"username", "password"}``)."""
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    password: str = json.loads(secret["SecretString"])["password"]
    return password


_NOT_ASKED_OF_THE_DATABASE = ("ServiceToken", "AssetHash", "SchemaVersion")
"""Properties that name no user or secret (the schema version is compared on its own)."""


def rollback_reason(event: Mapping[str, Any], own_asset_hash: str | None) -> str | None:
    """Why this update needs no database work (a rollback, or a code-only change), or None.

    An update needs the database only when it asks for something the previous properties did not
    have: a higher schema version, or a user or secret they did not name. CloudFormation passes custom
    resource properties as strings, so versions are parsed here.
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
    new = [
        key for key, value in requested.items() if key not in _NOT_ASKED_OF_THE_DATABASE and previous.get(key) != value
    ]
    if version == old_version and not new:
        return (
            "the update asks for nothing the ledger lacks (same schema version, same users): "
            "a code-only change or a rollback"
        )
    return None


def connect_with_retry(
    connect: Connect,
    *,
    deadline: float,
    timeouts: MigrationTimeouts,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> pg8000.native.Connection:
    """Open the first connection, retrying any failure with exponential backoff until ``deadline``; no
    attempt waits past it."""
    delay = timeouts.first_backoff_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return connect(max(0.001, min(timeouts.connect_timeout_seconds, deadline - clock())))
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
    roles: Sequence[Role],
    deadline: float,
    timeouts: MigrationTimeouts = MigrationTimeouts(),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """Connect (with retries), set the session's timeouts, and set up the database; retry lock timeouts.

    The statement timeout is the configured one, or what is left before ``deadline`` (less the socket's
    margin) when the connection came late; with less than a second left nothing is started.
    """
    connection = connect_with_retry(connect, deadline=deadline, timeouts=timeouts, clock=clock, sleep=sleep)
    try:
        left = deadline - clock()
        statement_seconds = min(timeouts.statement_timeout_ms / 1000, left - timeouts.socket_margin_seconds)
        if statement_seconds < MIN_STATEMENT_SECONDS:
            raise MigrationFailed(f"connected with {left:.1f} s left: too little to start a migration")
        set_statement_timeout(connection, statement_seconds + timeouts.socket_margin_seconds)
        # Session settings through set_config, so the SQL stays constant and the values are parameters.
        connection.run("SELECT set_config('statement_timeout', :ms, false)", ms=f"{round(statement_seconds * 1000)}ms")
        connection.run("SELECT set_config('lock_timeout', :ms, false)", ms=f"{timeouts.lock_timeout_ms}ms")
        delay = timeouts.first_backoff_seconds
        for attempt in range(1, timeouts.lock_attempts + 1):
            try:
                return set_up_database(connection, roles)
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
    remaining_ms = context.get_remaining_time_in_millis() if context else NO_CONTEXT_SECONDS * 1000
    deadline = invocation_deadline(remaining_ms, timeouts)
    applied = migrate(
        DatabaseSettings.from_env().connect,
        roles=roles_from_env(os.environ, secret_password),
        deadline=deadline,
        timeouts=timeouts,
    )
    log("ledger migrated", applied=applied)
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Applied": ",".join(map(str, applied))}}
