"""Loopback ports of a local run: a fixed port that is taken is a configuration error, said at once.

Port 0 means any free port. A fixed port (``--fixed-ports``, ``--aws-port``...) is checked before
anything starts, so a second ``make run --fixed-ports`` fails in a second with the reason instead of
after starting PostgreSQL, and never quietly moves to another port that ``events/env.json`` would
not know.
"""

from __future__ import annotations

import socket

from telemetry_adapter.config import ConfigurationError


def port_taken(what: str, port: int, error: OSError) -> ConfigurationError:
    """The error for ``what`` failing to listen on ``port``."""
    return ConfigurationError(
        f"{what} cannot listen on 127.0.0.1:{port}: {error.strerror or error}"
        " (another `make run --fixed-ports` running? or pass another port, 0 = any free one)"
    )


def check_free(what: str, port: int) -> None:
    """Raise ConfigurationError when the fixed ``port`` cannot be bound on 127.0.0.1 (0 always can)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves bind
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise port_taken(what, port, error) from None
