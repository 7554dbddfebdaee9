"""Least privilege, cdk-nag AwsSolutions with zero unacknowledged findings, cfn-lint clean."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import aws_iam as iam

from tests.infra.conftest import Assembly, Synthesized


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


def quarantine_bucket(synthesized: Synthesized) -> str:
    """The logical id of the quarantine bucket."""
    (bucket_id,) = [
        key
        for key, value in synthesized.of_type("AWS::S3::Bucket").items()
        if "-quarantine-" in json.dumps(value["Properties"]["BucketName"])
    ]
    return bucket_id


def rejected_objects(synthesized: Synthesized) -> dict[str, Any]:
    """The ARN of the quarantine's ``rejected/*`` objects, as the template writes it."""
    return {"Fn::Join": ["", [{"Fn::GetAtt": [quarantine_bucket(synthesized), "Arn"]}, "/rejected/*"]]}


def test_processor_policies_have_no_wildcard_resource(synthesized: Synthesized) -> None:
    """Nothing but the objects the processor names itself: the quarantine's ``rejected/*`` keys."""
    statements = role_policies(synthesized, processor_role(synthesized))
    assert statements
    for statement in statements:
        if statement["Resource"] == rejected_objects(synthesized):
            assert statement["Action"] == "s3:PutObject", statement
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, statement
        assert all("*" not in json.dumps(resource) for resource in resources), statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement


def test_processor_may_only_put_to_the_stream_and_quarantine_connect_as_app_user_and_use_its_own_queue(
    synthesized: Synthesized,
) -> None:
    actions: dict[str, Any] = {}
    for statement in role_policies(synthesized, processor_role(synthesized)):
        names = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for name in names:
            actions[name] = statement["Resource"]
    (stream_id,) = synthesized.of_type("AWS::Kinesis::Stream")
    queue_id = next(
        k
        for k, v in synthesized.of_type("AWS::SQS::Queue").items()
        if v["Properties"]["QueueName"] == "telemetry-adapter-dev-submissions"
    )
    assert actions.pop("kinesis:PutRecords") == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert actions.pop("kinesis:PutRecord") == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert actions.pop("s3:PutObject") == rejected_objects(synthesized)
    connect = json.dumps(actions.pop("rds-db:connect"))
    assert ":dbuser:" in connect
    assert connect.endswith('"/telemetry_app"]]}')
    assert set(actions) == {
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    }
    assert all(resource == {"Fn::GetAtt": [queue_id, "Arn"]} for resource in actions.values())


def test_the_health_function_signs_in_as_the_read_only_user(variant: Synthesized) -> None:
    """Its URL may be public: it connects as ``telemetry_health`` (SELECT only), never as the app user."""
    health = variant.resources["HealthFunction"]["Properties"]
    assert health["Environment"]["Variables"]["DB_USER"] == "telemetry_health"
    role_id = health["Role"]["Fn::GetAtt"][0]
    connects = [
        json.dumps(statement["Resource"])
        for statement in role_policies(variant, role_id)
        if statement["Action"] == "rds-db:connect"
    ]
    assert len(connects) == 1
    assert connects[0].endswith('"/telemetry_health"]]}')
    assert "telemetry_app" not in json.dumps(role_policies(variant, role_id))


def test_rds_proxy_holds_a_secret_for_every_user_it_signs_in_as(variant: Synthesized) -> None:
    """IAM authenticates the functions to the proxy; the proxy signs in to PostgreSQL with each user's
    password, read from that user's secret through the Secrets Manager endpoint."""
    (proxy,) = variant.of_type("AWS::RDS::DBProxy").values()
    secrets = sorted(json.dumps(auth["SecretArn"]) for auth in proxy["Properties"]["Auth"])
    assert len(secrets) == 3
    (endpoint,) = [
        value
        for value in variant.of_type("AWS::EC2::VPCEndpoint").values()
        if "secretsmanager" in json.dumps(value["Properties"]["ServiceName"])
    ]
    (statement,) = endpoint["Properties"]["PolicyDocument"]["Statement"]
    assert sorted(json.dumps(resource) for resource in statement["Resource"]) == secrets


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(variant: Synthesized) -> None:
    assert variant.nag_findings == []


def acknowledgments(synthesized: Synthesized) -> dict[str, str]:
    acknowledged: dict[str, str] = {}
    for node in synthesized.stack.node.find_all():
        for entry in node.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                acknowledged.update({f"{node.node.path} {rule}": reason for rule, reason in entry.data.items()})
    return acknowledged


def test_cdk_nag_acknowledgments_say_what_risk_is_accepted(variant: Synthesized) -> None:
    acknowledged = acknowledgments(variant)
    assert len(acknowledged) >= 10
    for key, reason in acknowledged.items():
        if "AwsSolutions-" not in key:
            continue  # CDK's own acknowledgments
        assert len(reason) >= 40, key
        assert "README" not in reason, key
        assert reason.startswith(("Risk accepted", "This queue is itself", "This bucket is itself")), (key, reason)
    rules = " ".join(acknowledged)
    for rule in ("AwsSolutions-SQS3", "AwsSolutions-IAM4", "AwsSolutions-IAM5[Resource::*]", "AwsSolutions-SMG4"):
        assert rule in rules


def test_managed_policy_acknowledgments_only_for_attached_policies(variant: Synthesized) -> None:
    """An IAM4 acknowledgment names a managed policy that a role under the acknowledged construct carries."""
    checked = 0
    for node in variant.stack.node.find_all():
        rules = [
            rule
            for entry in node.node.metadata
            if entry.type == "aws:cdk:acknowledged-rules"
            for rule in entry.data
            if "AwsSolutions-IAM4[" in rule
        ]
        if not rules:
            continue
        roles = [child for child in node.node.find_all() if isinstance(child, iam.Role)]
        attached = json.dumps([variant.stack.resolve(role.node.default_child.managed_policy_arns) for role in roles])  # type: ignore[union-attr]
        for rule in rules:
            assert rule.split("policy/", 1)[1].rstrip("]") in attached, (node.node.path, rule)
            checked += 1
    assert checked >= 9


def test_cfn_lint_passes_on_every_variant(assembly: Assembly) -> None:
    assert assembly.lint_returncode == 0, assembly.lint_output
