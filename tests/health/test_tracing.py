"""Powertools Tracer on both handlers: off (and never imported) unless enabled, real segments when on.

Enabled tracing is checked end to end in a subprocess (the X-Ray SDK's configuration is global):
the handler runs as in Lambda, and a UDP socket on loopback stands in for the X-Ray daemon.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from telemetry_adapter.observability import tracing_enabled

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
CALL_HANDLERS = """
import json, sys
import health.handler, processor.handler
from devkit.lambda_shapes import LambdaContext
responses = [
    health.handler.lambda_handler({"rawPath": "/nope", "requestContext": {"http": {"method": "GET"}}}, LambdaContext()),
    processor.handler.lambda_handler({"Records": []}, LambdaContext()),
]
print(json.dumps({"responses": responses, "xray_imported": "aws_xray_sdk" in sys.modules}))
"""


def run_handlers(env: dict[str, str]) -> dict[str, Any]:
    base = {
        key: value for key, value in os.environ.items() if key not in ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT")
    }
    completed = subprocess.run(
        [sys.executable, "-c", CALL_HANDLERS],
        env={
            **base,
            "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}",
            "STREAM_NAME": "events",
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_follows_the_powertools_rule(env: dict[str, str], expected: bool) -> None:
    assert tracing_enabled(env) is expected


def test_disabled_tracing_never_imports_the_xray_sdk() -> None:
    result = run_handlers({"POWERTOOLS_TRACE_DISABLED": "true", "LAMBDA_TASK_ROOT": "/var/task"})
    assert result["xray_imported"] is False
    health_response, processor_response = result["responses"]
    assert health_response["statusCode"] == 404
    assert processor_response == {"batchItemFailures": []}


def test_enabled_tracing_sends_a_subsegment_per_invocation_to_the_daemon() -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    try:
        result = run_handlers(
            {
                "LAMBDA_TASK_ROOT": str(ROOT / "functions"),
                "POWERTOOLS_TRACE_DISABLED": "false",
                "_X_AMZN_TRACE_ID": f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1",
                "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            }
        )
        segments: list[dict[str, Any]] = []
        while len(segments) < 2:
            header, document = daemon.recv(65_536).decode().split("\n", 1)
            assert json.loads(header) == {"format": "json", "version": 1}
            segments.append(json.loads(document))
    finally:
        daemon.close()
    assert result["xray_imported"] is True
    assert [segment["name"] for segment in segments] == ["## lambda_handler", "## lambda_handler"]
    assert {segment["trace_id"] for segment in segments} == {TRACE_ID}
    assert [segment["annotations"]["ColdStart"] for segment in segments] == [True, False]
    assert all(segment["annotations"]["Service"] == "telemetry-adapter" for segment in segments)
