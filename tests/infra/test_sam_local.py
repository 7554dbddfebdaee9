"""The `sam local invoke` path, everything of it that runs without Docker.

``sam local invoke -t cdk.out/TelemetryAdapter-dev.template.json ProcessorFunction -e events/valid.json
--env-vars events/env.json`` finds the function by logical id, runs its handler from the asset folder
the template's metadata names, with the template's environment overridden by the env file. Here the
same happens in a subprocess (the asset alone on the import path) against a moto server and the test
PostgreSQL, standing in for what `make run --fixed-ports` exposes.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from local_stack.environment import DLQ_NAME, QUARANTINE_BUCKET_NAME, QUEUE_NAME, STREAM_NAME
from local_stack.options import FIXED_AWS_PORT, FIXED_DB_PORT
from tests.infra.conftest import EVENTS_DIR, Assembly, Synthesized

# What `make run ARGS='--fixed-ports'` exposes on loopback (the env files are written for it).
FIXED = {"aws": f"127.0.0.1:{FIXED_AWS_PORT}", "postgres": f"127.0.0.1:{FIXED_DB_PORT}"}
MOTO_ACCOUNT = "123456789012"
ENV_FILES = {"env.json": "127.0.0.1", "env.docker-desktop.json": "host.docker.internal"}
REGION = "us-east-1"

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import processor.handler

class Context:
    function_name = "telemetry-adapter-local-processor"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    memory_limit_in_mb = 512
    aws_request_id = "sam-local"
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "local"
    def get_remaining_time_in_millis(self):
        return 60_000

event = json.load(open(sys.argv[2]))
print(json.dumps(processor.handler.lambda_handler(event, Context())))
"""


@pytest.fixture(scope="module")
def local_template(assembly: Assembly) -> Synthesized:
    return assembly.variants["local"]


def env_file(name: str) -> dict[str, dict[str, str]]:
    document: dict[str, dict[str, str]] = json.loads((EVENTS_DIR / name).read_text())
    return document


def test_template_resolves_function_handler_and_asset(local_template: Synthesized) -> None:
    function = local_template.resources["ProcessorFunction"]
    properties = function["Properties"]
    assert "Layers" not in properties  # the Lambda Insights layer would need AWS credentials to fetch
    assert properties["Runtime"] == "python3.12"
    module, attribute = properties["Handler"].rsplit(".", 1)
    asset = local_template.outdir / function["Metadata"]["aws:asset:path"]
    source = asset / (module.replace(".", "/") + ".py")
    assert source.is_file(), source
    assert f"def {attribute}(" in source.read_text()
    assert function["Metadata"]["aws:asset:property"] == "Code"


@pytest.mark.parametrize("name", list(ENV_FILES))
def test_env_files_override_only_declared_variables_and_match_make_run(local_template: Synthesized, name: str) -> None:
    """SAM only overrides variables the template declares; the values point at `make run --fixed-ports`."""
    host = ENV_FILES[name]
    for logical_id, variables in env_file(name).items():
        declared = local_template.resources[logical_id]["Properties"]["Environment"]["Variables"]
        assert set(variables) <= set(declared), (logical_id, set(variables) - set(declared))
        assert variables["DATABASE_URL"] == f"postgresql://postgres@{host}:{FIXED_DB_PORT}/postgres"
        assert variables["AWS_ENDPOINT_URL"] == f"http://{host}:{FIXED_AWS_PORT}"
        assert variables["STREAM_NAME"] == STREAM_NAME
        assert variables["QUEUE_URL"] == f"http://{host}:{FIXED_AWS_PORT}/{MOTO_ACCOUNT}/{QUEUE_NAME}"
        if "QUARANTINE_BUCKET" in variables:  # a template value is a Ref, which SAM cannot resolve
            assert variables["QUARANTINE_BUCKET"] == QUARANTINE_BUCKET_NAME
        if "DLQ_URL" in variables:
            assert variables["DLQ_URL"] == f"http://{host}:{FIXED_AWS_PORT}/{MOTO_ACCOUNT}/{DLQ_NAME}"
    processor = set(env_file(name)["ProcessorFunction"])
    assert {"DATABASE_URL", "AWS_ENDPOINT_URL", "STREAM_NAME", "QUEUE_URL", "QUARANTINE_BUCKET"} <= processor


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def records(endpoint: str) -> list[dict[str, Any]]:
    kinesis = boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION)
    found: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName="events")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="events", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        found.extend(json.loads(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"])
    return found


def valid_event_count(event: dict[str, Any]) -> int:
    total = 0
    for record in event["Records"]:
        body = record["body"]
        document = json.loads(body if body.lstrip().startswith("{") else base64.b64decode(body))
        total += sum(len(items) for items in document["events"].values())
    return total


def test_valid_sample_runs_from_the_asset_with_the_env_file(
    local_template: Synthesized, moto_server: str, clean_database: str, tmp_path: Path
) -> None:
    kinesis = boto3.client("kinesis", endpoint_url=moto_server, region_name=REGION)
    kinesis.create_stream(StreamName="events", ShardCount=2)
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=REGION)
    sqs.create_queue(QueueName="submissions")
    host_port = moto_server.removeprefix("http://")
    variables = {
        key: value.replace(FIXED["aws"], host_port) for key, value in env_file("env.json")["ProcessorFunction"].items()
    }
    variables["DATABASE_URL"] = clean_database
    declared = local_template.resources["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    # The environment SAM builds: the template's literal values, overridden by the env file.
    environment = {k: v for k, v in declared.items() if isinstance(v, str)} | variables
    environment |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    asset = local_template.outdir / local_template.resources["ProcessorFunction"]["Metadata"]["aws:asset:path"]
    event_path = EVENTS_DIR / "valid.json"
    result = subprocess.run(
        [sys.executable, "-B", "-I", "-S", "-c", PROBE, str(asset), str(event_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    response = json.loads(result.stdout.strip().splitlines()[-1])
    assert response == {"batchItemFailures": []}
    assert len(records(moto_server)) == valid_event_count(json.loads(event_path.read_text())) > 0
