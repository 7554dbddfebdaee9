"""The operators' tool's managed policy: the calls the tool makes, on this stack's resources, nothing more."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synthesized
from tests.infra.test_security import quarantine_bucket, rejected_objects


def operator_statements(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    (policy,) = synthesized.of_type("AWS::IAM::ManagedPolicy").values()
    return {statement["Sid"]: statement for statement in policy["Properties"]["PolicyDocument"]["Statement"]}


def queue_id(synthesized: Synthesized, name: str) -> str:
    return next(k for k, v in synthesized.of_type("AWS::SQS::Queue").items() if v["Properties"]["QueueName"] == name)


def test_the_policy_allows_exactly_what_the_tool_calls(variant: Synthesized) -> None:
    stage = variant.stack.names.stage
    statements = operator_statements(variant)
    dlq = {"Fn::GetAtt": [queue_id(variant, f"telemetry-adapter-{stage}-submissions-dlq"), "Arn"]}
    queue = {"Fn::GetAtt": [queue_id(variant, f"telemetry-adapter-{stage}-submissions"), "Arn"]}
    bucket = {"Fn::GetAtt": [quarantine_bucket(variant), "Arn"]}
    expected = {
        "ReadStackOutputs": ("cloudformation:DescribeStacks", {"Ref": "AWS::StackId"}),
        "PeekAndRedriveDeadLetters": (
            ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
            dlq,
        ),
        "SendToSubmissions": (["sqs:GetQueueAttributes", "sqs:SendMessage"], queue),
        "ListQuarantine": ("s3:ListBucket", bucket),
        "ReadQuarantine": ("s3:GetObject", rejected_objects(variant)),
        "AskTheHealthFunction": ("lambda:InvokeFunction", {"Fn::GetAtt": ["HealthFunction", "Arn"]}),
        # The runbook's HEALTH_URL requests, signed with the operator's credentials (IAM auth).
        "CallTheHealthUrl": ("lambda:InvokeFunctionUrl", {"Fn::GetAtt": ["HealthFunction", "Arn"]}),
    }
    # cdk.json's @aws-cdk/aws-iam:minimizePolicies sorts the actions.
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == expected
    assert all(statement["Effect"] == "Allow" for statement in statements.values())
    assert statements["ListQuarantine"]["Condition"] == {"StringLike": {"s3:prefix": ["rejected/*"]}}
    assert statements["CallTheHealthUrl"]["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
    text = json.dumps(statements)
    for never in ("kinesis:", "rds-db:", "s3:PutObject", "s3:Delete", "secretsmanager:"):
        assert never not in text


def test_the_policy_is_an_output_and_attached_to_nothing(synthesized: Synthesized) -> None:
    ((policy_id, policy),) = synthesized.of_type("AWS::IAM::ManagedPolicy").items()
    assert synthesized.json["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": policy_id}
    for key in ("Roles", "Users", "Groups", "ManagedPolicyName"):
        assert key not in policy["Properties"]
