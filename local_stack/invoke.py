"""``make invoke EVENT=events/valid.json``: the deployed handler, run once on an event, without Docker.

The equivalent of ``sam local invoke ProcessorFunction -e <event>``: the function's own
``lambda_handler`` (the one the asset ships, with its Powertools decorators), configured from the
environment exactly as in Lambda, runs once against the local stack. Its logs and metrics come out
on stderr between ``START`` and ``REPORT`` lines as in CloudWatch; the response is printed on stdout.

Which stack: a running ``make run`` when its stack file (``build/local-stack.json``, ``--stack-file``)
is there and alive, the process it names still running (the event's effects then show up in that run:
records in its stream, rows in its ledger); otherwise one started for this invocation (moto and an
embedded PostgreSQL, migrated, the queues and stream created) and removed afterwards. ``--stack``
forces either. The first line on stderr says which it used, and why.

Exit status: 0 when the handler returned, 1 when it raised (its error printed as Lambda reports
it), 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from devkit.cli_flags import HelpFormatter, integer, number
from devkit.lambda_shapes import LambdaContext
from local_stack.environment import budget_margin, local_environment, patched_environ
from local_stack.health_server import function_url_event
from local_stack.options import Options
from local_stack.services import local_services
from local_stack.stack_file import DEFAULT_PATH, LocalStackFile, live
from telemetry_adapter.config import ConfigurationError

FUNCTIONS = {"processor": "processor.handler", "health": "health.handler"}
"""``--function``: the stack's ProcessorFunction and HealthFunction."""


def build_parser() -> argparse.ArgumentParser:
    """The flags (``make invoke ARGS='--help'``)."""
    parser = argparse.ArgumentParser(
        prog="make invoke EVENT=<file> [ARGS='...']  (or python -m local_stack.invoke)",
        description="Run a function's deployed handler once on an event against the local stack, like "
        "sam local invoke but without Docker: logs on stderr, the response on stdout.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--event", type=Path, help="event JSON file, e.g. events/valid.json (health: optional)")
    parser.add_argument("--function", choices=sorted(FUNCTIONS), default="processor", help="which function")
    parser.add_argument(
        "--stack",
        choices=("auto", "running", "start"),
        default="auto",
        help="running: the `make run` whose stack file is alive; start: one just for this invocation; "
        "auto: running if there is one, else start",
    )
    parser.add_argument(
        "--stack-file", type=Path, default=DEFAULT_PATH, help="the file a running `make run` writes its endpoints to"
    )
    parser.add_argument("--timeout", type=number(1, 900), default=60.0, help="the function timeout, seconds")
    parser.add_argument("--memory", type=integer(128, 10_240), default=512, help="memory size the context reports")
    return parser


@contextlib.contextmanager
def running_stack(stack: LocalStackFile, why: str) -> Iterator[str]:
    """The environment of the running ``make run`` its stack file describes; yield how it was found."""
    environment = local_environment(
        endpoint_url=stack.aws_endpoint,
        database_url=stack.database_url,
        queue_url=stack.queue_url,
        dlq_url=stack.dlq_url,
        quarantine_bucket=stack.quarantine_bucket,
    )
    environment.update(AWS_REGION=stack.region, AWS_DEFAULT_REGION=stack.region, STREAM_NAME=stack.stream_name)
    with patched_environ(environment):
        yield f"the running stack of {why}"


@contextlib.contextmanager
def started_stack(why: str) -> Iterator[str]:
    """A stack started for this invocation (the same services as ``make run``), removed afterwards."""
    with local_services(Options()) as stack:
        yield f"a stack started for this invocation (AWS endpoint {stack.endpoint_url}, removed afterwards; {why})"


def stack_for(choice: str, stack_file: Path) -> contextlib.AbstractContextManager[str]:
    """The stack ``--stack`` asks for: ``running`` needs a live stack file, ``start`` ignores it, ``auto``
    takes the running stack when there is one."""
    if choice == "start":
        return started_stack("--stack start")
    stack, why = live(stack_file)
    if stack is not None:
        return running_stack(stack, why)
    if choice == "running":
        raise ConfigurationError(f"--stack running: no running `make run`: {why}")
    return started_stack(f"no running `make run`: {why}")


def load_event(path: Path | None, function: str) -> dict[str, Any]:
    """The event from ``path``; for the health function without one, a ``GET /health`` request."""
    if path is None:
        if function == "health":
            return function_url_event("GET", "/health", {"host": "127.0.0.1"}, b"", "127.0.0.1")
        raise ConfigurationError("name the event: make invoke EVENT=events/valid.json (or ARGS='--event <file>')")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"cannot read the event {path}: {error.strerror}") from None
    except ValueError as error:
        raise ConfigurationError(f"the event {path} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"the event {path} must be a JSON object")
    return document


@contextlib.contextmanager
def logs_to(stream: TextIO) -> Iterator[None]:
    """The function's logs (Powertools' handler) and printed metrics go to ``stream`` for the block.

    Imported here, once the stack's environment is in place: Powertools reads it at import time."""
    from telemetry_adapter.observability import logger

    handler = logger.registered_handler
    previous = handler.setStream(stream) if isinstance(handler, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        if isinstance(handler, logging.StreamHandler) and previous is not None:
            handler.setStream(previous)


def invoke(function: str, event: dict[str, Any], context: LambdaContext, logs: TextIO) -> tuple[Any, bool]:
    """Call the function's ``lambda_handler`` once; return (response or Lambda-style error, whether it failed)."""
    request = context.aws_request_id
    logs.write(f"START RequestId: {request} Version: $LATEST\n")
    started = time.perf_counter()
    failed = False
    with logs_to(logs):
        try:
            handler = importlib.import_module(FUNCTIONS[function]).lambda_handler
            response: Any = handler(event, context)
        except Exception as error:
            failed = True
            response = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_exception(error),
            }
    duration = (time.perf_counter() - started) * 1000
    logs.write(f"END RequestId: {request}\n")
    logs.write(
        f"REPORT RequestId: {request}\tDuration: {duration:.2f} ms\tMemory Size: {context.memory_limit_in_mb} MB\n"
    )
    logs.flush()
    return response, failed


def main(argv: Sequence[str] | None = None) -> int:
    """Invoke once; print logs to stderr and the response to stdout."""
    args = build_parser().parse_args(argv)
    timeout_ms = int(args.timeout * 1000)
    context = LambdaContext(
        timeout_ms=timeout_ms,
        function_name=f"telemetry-adapter-{args.function}",
        memory_limit_in_mb=args.memory,
    )
    try:
        event = load_event(args.event, args.function)
        margin = budget_margin(timeout_ms)  # for this timeout, before a started stack sets make run's own
        with stack_for(args.stack, args.stack_file) as where, patched_environ(margin):
            print(f"invoking the {args.function} function on {where}", file=sys.stderr, flush=True)
            context.started = time.monotonic()
            response, failed = invoke(args.function, event, context, sys.stderr)
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(response, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
