"""The stack's own answers: its health, and what its ledger knows of one submission.

The ledger has no public endpoint (isolated subnets), so a deployed stack is asked through its health
function: a direct Lambda ``Invoke`` (IAM ``lambda:InvokeFunction``) with an operation event, answered
by ``functions/health/operations.py``. A local stack is asked with the same code: the health answer
from its running health endpoint, the ledger lookup in process against its database.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, Protocol, TextIO

from ops.target import Target, TargetError

_HTTP_TIMEOUT_SECONDS = 30


class OperationError(RuntimeError):
    """The stack could not answer (the function failed, or is unreachable)."""


class StackFunctions(Protocol):
    """Answers the operators' questions."""

    def health(self) -> dict[str, Any]:
        """The health answer: ``{"status": "ok|degraded|failing", "checks": {...}}``."""
        ...

    def submission(self, submission_id: str) -> dict[str, Any]:
        """The ``submission`` operation's answer (see ``health.operations``)."""
        ...


class InvokedHealthFunction:
    """A deployed health function, invoked directly."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function_name = function_name

    def health(self) -> dict[str, Any]:
        """``{"operation": "health"}``."""
        return self._invoke({"operation": "health"})

    def submission(self, submission_id: str) -> dict[str, Any]:
        """``{"operation": "submission", "submission_id": ...}``."""
        return self._invoke({"operation": "submission", "submission_id": submission_id})

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.invoke(
                FunctionName=self._function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
            )
        except Exception as error:
            raise OperationError(f"cannot invoke {self._function_name}: {type(error).__name__}: {error}") from None
        payload = response["Payload"].read()
        try:
            answer = json.loads(payload or b"null")
        except ValueError:
            answer = None
        if response.get("FunctionError"):
            message = answer.get("errorMessage") if isinstance(answer, dict) else payload[:200]
            raise OperationError(f"{self._function_name} failed ({response['FunctionError']}): {message}")
        if not isinstance(answer, dict):
            raise OperationError(f"{self._function_name} answered something other than a JSON object")
        return answer


class LocalStackFunctions:
    """A local stack: its health endpoint over HTTP, its ledger in process.

    The lookup runs the health function's code here, and that code logs as it does in Lambda (JSON
    lines for CloudWatch). Those lines are not the operator's answer: they are dropped, or written to
    ``function_logs`` when one is given (``--verbose``).
    """

    def __init__(self, health_url: str | None, database_url: str | None, function_logs: TextIO | None = None) -> None:
        self._health_url = health_url
        self._database_url = database_url
        self._function_logs = function_logs

    def health(self) -> dict[str, Any]:
        """GET the health endpoint; a 503 carries the ``failing`` answer in its body."""
        if not self._health_url:
            raise OperationError("no health URL: give --health-url (or --health-function)")
        try:
            with urllib.request.urlopen(self._health_url, timeout=_HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as error:
            body = error.read()
        except OSError as error:
            raise OperationError(f"the health endpoint {self._health_url} does not answer: {error}") from None
        try:
            answer = json.loads(body or b"null")
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "status" not in answer:
            raise OperationError(f"the health endpoint {self._health_url} gave no health answer")
        return answer

    def submission(self, submission_id: str) -> dict[str, Any]:
        """The health function's own ``submission`` operation, run here against the local ledger."""
        if not self._database_url:
            raise OperationError("no ledger: give --database-url (or --health-function for a deployed stack)")
        from health import operations
        from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings

        provider = ConnectionProvider(DatabaseSettings.from_url(self._database_url).connect)
        lookup = operations.SubmissionLookup(provider)
        try:
            with _function_logs_to(self._function_logs or io.StringIO()):
                return operations.answer(
                    {"operation": "submission", "submission_id": submission_id},
                    health=self.health,
                    lookup=lambda: lookup,
                )
        finally:
            provider.discard()


@contextlib.contextmanager
def _function_logs_to(stream: TextIO) -> Iterator[None]:
    """The function's own log lines (Powertools, JSON) go to ``stream`` while its code runs here: never to
    stdout, which is the tool's answer and which ``--json`` promises to keep parseable."""
    from telemetry_adapter.observability import logger

    handler = logger.registered_handler
    if not isinstance(handler, logging.StreamHandler):
        yield
        return
    previous = handler.setStream(stream)
    try:
        yield
    finally:
        if previous is not None:
            handler.setStream(previous)


def stack_functions(target: Target, function_logs: TextIO | None = None) -> StackFunctions:
    """The health function when the target names one, otherwise the local stack's endpoint and ledger
    (``function_logs``: where the function's own log lines go when its code runs here; None drops them)."""
    if target.health_function:
        return InvokedHealthFunction(target.client("lambda"), target.health_function)
    if target.health_url or target.database_url:
        return LocalStackFunctions(target.health_url, target.database_url, function_logs)
    raise TargetError(
        "asking the stack needs --health-function (or --stack NAME, whose output HealthFunctionName names it), "
        f"or --local; target: {target.description}"
    )
