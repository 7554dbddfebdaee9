"""Least privilege, cdk-nag AwsSolutions with zero unacknowledged findings, cfn-lint clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.infra.conftest import Synthesized


def role_policies(synthesized: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """Statements of every inline policy attached to the role."""
    statements = []
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def processor_role(synthesized: Synthesized) -> str:
    role: str = synthesized.resources["ProcessorFunction"]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def test_processor_policies_have_no_wildcard_resource(synthesized: Synthesized) -> None:
    statements = role_policies(synthesized, processor_role(synthesized))
    assert statements
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, statement
        assert all("*" not in json.dumps(resource) for resource in resources), statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement


def test_processor_may_only_put_to_the_stream_connect_as_app_user_and_consume_the_queue(
    synthesized: Synthesized,
) -> None:
    actions: dict[str, Any] = {}
    for statement in role_policies(synthesized, processor_role(synthesized)):
        names = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for name in names:
            actions[name] = statement["Resource"]
    (stream_id,) = synthesized.of_type("AWS::Kinesis::Stream")
    queue_id = next(
        k for k, v in synthesized.of_type("AWS::SQS::Queue").items() if v["Properties"]["QueueName"] == "submissions"
    )
    assert actions.pop("kinesis:PutRecords") == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert actions.pop("kinesis:PutRecord") == {"Fn::GetAtt": [stream_id, "Arn"]}
    connect = json.dumps(actions.pop("rds-db:connect"))
    assert ":dbuser:" in connect
    assert connect.endswith('"/telemetry_app"]]}')
    assert set(actions) == {
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    assert all(resource == {"Fn::GetAtt": [queue_id, "Arn"]} for resource in actions.values())


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    assert synthesized.nag_findings == []


def test_cdk_nag_acknowledgments_carry_reasons(synthesized: Synthesized) -> None:
    acknowledged: dict[str, str] = {}
    for node in synthesized.stack.node.find_all():
        for entry in node.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                acknowledged.update({f"{node.node.path} {rule}": reason for rule, reason in entry.data.items()})
    assert len(acknowledged) >= 10
    assert all(len(reason) >= 40 for reason in acknowledged.values()), acknowledged
    rules = " ".join(acknowledged)
    for rule in ("AwsSolutions-SQS3", "AwsSolutions-IAM4", "AwsSolutions-IAM5[Resource::*]", "AwsSolutions-SMG4"):
        assert rule in rules


def test_cfn_lint_passes(synthesized: Synthesized) -> None:
    template = synthesized.outdir / "TelemetryAdapter.template.json"
    # W3005 (DependsOn already implied by GetAtt) is how CDK orders a VPC function after its role's
    # policies; harmless and not ours to change.
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--regions", "us-east-1", "--ignore-checks", "W3005"]
    result = subprocess.run(
        [*command, "--", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
