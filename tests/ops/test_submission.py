"""``submission <id>``, and the deployed path of every verb: the stack's outputs read with boto3, the health
function invoked directly (``lambda:InvokeFunction``), its real handler answering from the ledger."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest

from devkit import fleet
from local_stack.resources import queue_depth
from telemetry_adapter.ledger.connection import ConnectionProvider, DatabaseSettings
from telemetry_adapter.ledger.repository import ClaimRequest, Ledger
from tests.ops.conftest import LocalStack, Outcome, valid_document
from tests.ops.fake_lambda import FakeLambda

pytestmark = pytest.mark.timeout(120)
STACK = "TelemetryAdapter-opstest"
HEALTH_FUNCTION = "telemetry-adapter-opstest-health"


def record(local: LocalStack, *, events: int, published: int) -> tuple[str, str]:
    """A submission the ledger holds with ``published`` of ``events`` events published."""
    database_url = local.stack.database_url
    assert database_url
    ledger = Ledger(ConnectionProvider(DatabaseSettings.from_url(database_url).connect))
    submission_id, device_id = str(uuid.uuid4()), str(uuid.uuid4())
    ledger.claim([ClaimRequest(submission_id, device_id, b"\xab", events)], owner="worker-1", lease_seconds=60)
    ledger.record_outcome({submission_id: published}, owner="worker-1", worker="worker-1", batch_size=1)
    return submission_id, device_id


@pytest.fixture
def deployed(local: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLambda]:
    """The local stack described as a deployed one: a CloudFormation stack (on moto) with the outputs the
    CDK stack writes, and its health function behind the Lambda Invoke API."""
    outputs = {
        "QueueUrl": local.queue_url,
        "DeadLetterQueueUrl": local.dlq_url,
        "QuarantineBucketName": local.bucket,
        "StreamName": local.stack.resources.stream_name,
        "HealthFunctionName": HEALTH_FUNCTION,
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "opstest-placeholder"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    local.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    fake = FakeLambda(HEALTH_FUNCTION)
    fake.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", fake.url)  # boto3's own per-service endpoint setting
    try:
        yield fake
    finally:
        fake.stop()


def test_submission_from_the_local_stack(local: LocalStack, run_ops: Callable[..., Outcome]) -> None:
    submission_id, device_id = record(local, events=4, published=4)
    result = run_ops("submission", submission_id)
    assert result.status == 0, result.err
    assert f"device id       {device_id}" in result.out
    assert "event count     4" in result.out
    assert "published count 4" in result.out
    assert "state           completed" in result.out
    assert result.err == ""  # the health function's own JSON log lines are not the operator's answer
    # As a separate process: stdout holds the answer alone; the function's log lines only with --verbose,
    # on stderr.
    command = [sys.executable, "-m", "ops", "submission", submission_id, "--json", "--local"]
    for verbose in (False, True):
        separate = subprocess.run(
            [*command, "--stack-file", str(local.stack_file), *(["--verbose"] if verbose else [])],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert separate.returncode == 0, separate.stderr
        assert json.loads(separate.stdout)["ledger"]["device_id"] == device_id
        assert ('"operator lookup"' in separate.stderr) is verbose, separate.stderr
    unknown = run_ops("submission", str(uuid.uuid4()))
    assert unknown.status == 1
    assert "is not in the ledger" in unknown.out


def test_submission_from_a_deployed_stack_goes_through_the_health_function(
    local: LocalStack, deployed: FakeLambda, run_ops: Callable[..., Outcome]
) -> None:
    submission_id, device_id = record(local, events=5, published=2)
    result = run_ops("submission", submission_id.upper(), "--json", target=("--stack", STACK))
    assert result.status == 0, result.err
    answer = json.loads(result.out)
    assert answer["found"] is True
    assert answer["ledger"]["device_id"] == device_id
    assert (answer["ledger"]["published_count"], answer["ledger"]["state"]) == (2, "unfinished")
    assert deployed.events == [{"operation": "submission", "submission_id": submission_id}]


def test_every_verb_works_from_the_stack_name_alone(
    local: LocalStack, deployed: FakeLambda, run_ops: Callable[..., Outcome]
) -> None:
    sqs = local.client("sqs")
    sqs.send_message(QueueUrl=local.dlq_url, MessageBody=fleet.encode(valid_document(3)))
    target = ("--stack", STACK)
    assert run_ops("dlq", "peek", target=target).status == 0
    assert run_ops("quarantine", "list", target=target).status == 0
    redriven = run_ops("dlq", "redrive", "--rate", "1000", target=target)
    assert redriven.status == 0, redriven.err
    assert deployed.events == [{"operation": "health"}]  # the redrive asked the stack's health first
    assert queue_depth(sqs, local.queue_url).visible == 1


def test_a_stack_that_does_not_exist_or_a_function_that_fails(
    local: LocalStack, deployed: FakeLambda, run_ops: Callable[..., Outcome]
) -> None:
    missing = run_ops("dlq", "peek", target=("--stack", "TelemetryAdapter-nowhere"))
    assert missing.status == 2
    assert "cannot read the outputs of stack 'TelemetryAdapter-nowhere'" in missing.err
    wrong_function = run_ops(
        "submission", str(uuid.uuid4()), target=("--stack", STACK, "--health-function", "not-the-health-function")
    )
    assert wrong_function.status == 1
    assert "cannot invoke not-the-health-function: ResourceNotFoundException" in wrong_function.err
