"""Naming an error for logs, metrics and health answers without leaking its message."""

from __future__ import annotations

from collections.abc import Mapping


def error_code(error: BaseException) -> str:
    """An AWS error's code (``ProvisionedThroughputExceededException``...), else the exception's class.

    Never the message: it may name hosts, users or values from a submission.
    """
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str) and code:
            return code
    return type(error).__name__
