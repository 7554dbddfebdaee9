"""Migration custom resource: schema migrations and the app database user, on every stack update.

Invoked by the CDK Provider framework (which answers CloudFormation), before the processor's event
source mapping exists. It signs in to RDS Proxy as the admin with an IAM token, then:

1. applies the versioned SQL migrations (``apply_migrations``: advisory-locked, idempotent);
2. creates the app user if missing and sets its password from the Secrets Manager secret the proxy
   uses for it, sent as a SCRAM-SHA-256 verifier so the plain password never reaches the server (or
   its statement log);
3. grants the app user exactly what the code needs: SELECT, INSERT, UPDATE, DELETE on the ledger
   tables, and nothing on ``schema_migrations``.

Every step is safe to repeat. A delete leaves the database alone (the instance keeps a snapshot).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import Any

import pg8000.native
import scramp

from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations

PHYSICAL_ID = "ledger-migrations"
APP_TABLES = ("submission_ledger", "processor_heartbeat")
_SCRAM_ITERATIONS = 4096
_SCRAM = scramp.ScramMechanism("SCRAM-SHA-256")


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


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Provider framework entry point: Create and Update migrate; Delete does nothing."""
    del context
    if event.get("RequestType") == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    password = app_password(os.environ["APP_SECRET_ARN"])
    connection = DatabaseSettings.from_env().connect()
    try:
        applied = set_up_database(connection, app_user=os.environ["APP_DB_USER"], app_password=password)
    finally:
        connection.close()
    print(json.dumps({"message": "ledger migrated", "applied": applied}))  # the function's log
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Applied": ",".join(map(str, applied))}}
