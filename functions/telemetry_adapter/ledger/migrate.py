"""``python -m telemetry_adapter.ledger.migrate``: apply the migrations to the configured database.

Used by ``make migrate`` and the local runner; the deployed stack runs the same function from its
migration custom resource.
"""

from __future__ import annotations

import sys

from telemetry_adapter.ledger.connection import DatabaseSettings
from telemetry_adapter.ledger.migrations import apply_migrations


def main() -> int:
    """Apply pending migrations to the database the environment names; print what was applied."""
    connection = DatabaseSettings.from_env().connect()
    try:
        applied = apply_migrations(connection)
    finally:
        connection.close()
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
