"""``build/run.log``: each run's own, and each line naming the function that wrote it, although the local
stack runs the processor and the health function in one process, on different threads."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit import fleet
from local_stack.health_server import function_url_event, invoke_health
from local_stack.invocation import RecordingPipeline, lambda_style_handler
from local_stack.options import Options
from local_stack.output import output_to_log
from local_stack.poller import Poller
from local_stack.services import Stack, aws_client, local_services
from local_stack.tally import Tally
from telemetry_adapter.config import Settings
from telemetry_adapter.observability import logger
from telemetry_adapter.publisher import KinesisClient, OrderedPublisher
from telemetry_adapter.runtime import kinesis_client, ledger_from_env

PROCESSOR = "telemetry-adapter-processor"
HEALTH = "telemetry-adapter-health"


class HealthCheckDuringPut:
    """A Kinesis client that, on its first call, lets the health function answer a request on another
    thread (as the local stack's HTTP server does) while the processor's invocation is under way."""

    def __init__(self, client: KinesisClient) -> None:
        self._client = client
        self.health_requests = 0

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Any:
        if not self.health_requests:
            request = threading.Thread(
                target=invoke_health, args=(function_url_event("GET", "/health", {}, b"", "127.0.0.1"),)
            )
            request.start()
            request.join(30)
            self.health_requests += 1
        return self._client.put_records(StreamName=StreamName, Records=Records)


@pytest.fixture
def services(tmp_path: Path, stack_database: str | None) -> Iterator[tuple[Options, Stack]]:
    options = Options(log_file=tmp_path / "run.log", database_url=stack_database)
    with output_to_log(options.log_file), local_services(options) as stack:
        yield options, stack


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]


@pytest.mark.timeout(90)
def test_each_line_names_the_function_that_wrote_it(services: tuple[Options, Stack]) -> None:
    options, stack = services
    settings = Settings.from_env(check_time_budget=False)
    kinesis = HealthCheckDuringPut(kinesis_client())
    tally = Tally()
    pipeline = RecordingPipeline(
        settings, ledger_from_env(), OrderedPublisher(kinesis, settings.stream_name, settings.publish), tally
    )
    poller = Poller(
        aws_client("sqs"),
        stack.resources.queue_url,
        lambda_style_handler(pipeline),
        tally,
        batch_size=10,
        batching_window=0,
        visibility_timeout=options.visibility_timeout,
        function_timeout=options.function_timeout,
    )
    document = fleet.submission(random.Random(4), fleet.device_ids(1)[0])
    aws_client("sqs").send_message(QueueUrl=stack.resources.queue_url, MessageBody=fleet.encode(document))
    try:
        assert poller.poll_once() == 1
    finally:
        pipeline.publisher.close()
    assert kinesis.health_requests == 1

    lines = _lines(options.log_file)
    processed = [line for line in lines if line.get("message") == "batch processed"]
    checked = [line for line in lines if str(line.get("message", "")).startswith("health check")]
    assert processed
    assert checked
    assert {line.get("function_name") for line in processed} == {PROCESSOR}
    assert {line.get("function_name") for line in checked} == {HEALTH}


def test_each_run_starts_a_fresh_log(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text('{"message":"a line of an earlier run"}\n', encoding="utf-8")
    with output_to_log(path):
        logger.info("this run")
    text = path.read_text(encoding="utf-8")
    assert "an earlier run" not in text
    assert '"this run"' in text
