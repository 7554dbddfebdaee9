"""A processor worker in its own process, so it can be SIGKILLed at the worst moment.

``python -m chaos.worker`` reads one job (an SQS event and when to stop) as JSON on stdin and wires the
pipeline exactly as the Lambda runtime does (``Settings.from_env``, ``DatabaseSettings.from_env``,
``runtime.kinesis_client``, so the environment points it at the moto server and the database). The
only addition is a hook on the Kinesis client: after the ``kill_after_calls``-th acknowledged
PutRecords call, and so before the ledger records the outcome, it tells the parent ``ACKED`` on stdout
and waits to be killed. Logs go to stderr; stdout carries only the protocol lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROTOCOL = "CHAOS "
ACKED = "ACKED"
RESULT = "RESULT"
_ROOT = Path(__file__).resolve().parent.parent
_WAIT_FOR_KILL_SECONDS = 60


def main() -> int:
    """Child side: handle one batch, pausing for the kill once Kinesis has acknowledged a call."""
    from chaos.kinesis_faults import CallHook
    from devkit.lambda_shapes import LambdaContext
    from devkit.lifetime import die_with_parent
    from processor.handler import handle_batch
    from telemetry_adapter.config import Settings
    from telemetry_adapter.observability import logger
    from telemetry_adapter.runtime import build_pipeline, kinesis_client

    die_with_parent()  # a chaos run killed outright takes its workers along
    logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    job = json.loads(sys.stdin.read())
    settings = Settings.from_env(check_time_budget=False)  # runs short invocations on purpose
    hook = CallHook(kinesis_client())

    def wait_for_kill() -> None:
        _say(ACKED)
        time.sleep(_WAIT_FOR_KILL_SECONDS)  # the parent kills us here; if it does not, we carry on

    hook.arm(int(job["kill_after_calls"]), wait_for_kill)
    pipeline = build_pipeline(settings, hook)
    response = handle_batch(job["event"], LambdaContext(timeout_ms=int(job["timeout_ms"])), pipeline)
    _say(f"{RESULT} {json.dumps(response)}")
    pipeline.publisher.close()
    return 0


def _say(line: str) -> None:
    sys.stdout.write(f"{PROTOCOL}{line}\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class WorkerOutcome:
    """What happened to the worker: killed after an acknowledged call, or finished with a response."""

    killed: bool
    failed_message_ids: frozenset[str]


def run_worker(event: dict[str, Any], env: dict[str, str], *, kill_after_calls: int, timeout_ms: int) -> WorkerOutcome:
    """Parent side: run a worker on ``event``; SIGKILL it as soon as it says ``ACKED``.

    A killed invocation acknowledges nothing, so every message of the batch counts as failed.
    """
    every = frozenset(record["messageId"] for record in event["Records"])
    from devkit.lifetime import child_environment

    child_env = {**os.environ, **env, **child_environment()}
    job = json.dumps({"event": event, "kill_after_calls": kill_after_calls, "timeout_ms": timeout_ms})
    with subprocess.Popen(
        [sys.executable, "-m", "chaos.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=child_env,
        cwd=_ROOT,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(job)
        child.stdin.close()
        watchdog = threading.Timer(_WAIT_FOR_KILL_SECONDS, child.kill)  # a hung child cannot hang the run
        watchdog.start()
        try:
            return _follow(child, every)
        finally:
            watchdog.cancel()


def _follow(child: subprocess.Popen[str], every: frozenset[str]) -> WorkerOutcome:
    """Read the child's protocol lines until it says ACKED (then SIGKILL it) or gives its result."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(PROTOCOL + ACKED):
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            return WorkerOutcome(killed=True, failed_message_ids=every)
        if line.startswith(PROTOCOL + RESULT):
            response = json.loads(line[len(PROTOCOL + RESULT) :])
            child.wait(timeout=10)
            return WorkerOutcome(
                killed=False,
                failed_message_ids=frozenset(item["itemIdentifier"] for item in response["batchItemFailures"]),
            )
    child.kill()  # it died or went silent: the invocation failed as a whole
    child.wait(timeout=10)
    return WorkerOutcome(killed=False, failed_message_ids=every)


if __name__ == "__main__":
    sys.exit(main())
