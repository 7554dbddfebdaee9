"""``python -m telemetry_adapter.ledger.migrate``: apply the migrations to the configured database.

Used by ``make migrate ARGS='...'`` and the local runner; the deployed stack runs the same function from
its migration custom resource. ``--dry-run`` lists the pending migrations without applying them.
Exit status: 0 done, 1 the database could not be reached or refused, 2 a usage or configuration
error; each said in one line (the traceback too with ``--debug``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from telemetry_adapter.config import ConfigurationError
from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations, pending_migrations

PROG = "make migrate [ARGS='...']  (or python -m telemetry_adapter.ledger.migrate)"


def build_parser() -> argparse.ArgumentParser:
    """The flags (``make migrate ARGS='--help'``)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Apply the ledger's pending SQL migrations to the database DATABASE_URL (or DB_HOST, DB_PORT, "
        "DB_NAME, DB_USER and DB_PASSWORD or DB_IAM_AUTH) names, in one transaction.",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the pending migrations; apply nothing")
    parser.add_argument("--debug", action="store_true", help="on an error, print the traceback too")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Apply (or list) pending migrations on the database the environment names; print what was done."""
    args = build_parser().parse_args(argv)
    try:
        connection = DatabaseSettings.from_env().connect()
        try:
            if args.dry_run:
                pending = pending_migrations(connection)
                names = ", ".join(f"{migration.version:04d}_{migration.name}" for migration in pending)
                print(f"pending migrations (not applied): {names}" if pending else "schema is up to date")
                return 0
            applied = apply_migrations(connection)
        finally:
            connection.close()
    except ConfigurationError as error:
        return _failed(f"configuration error: {error}", 2, debug=args.debug)
    except Exception as error:  # the database unreachable or refusing: a sentence, not a traceback
        if not (isinstance(error, OSError) or type(error).__module__.startswith("pg8000")):
            raise
        return _failed(f"database error: {error}", 1, debug=args.debug)
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def _failed(message: str, status: int, *, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"migrate: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
