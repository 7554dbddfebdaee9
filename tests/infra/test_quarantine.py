"""The quarantine bucket: private, encrypted, TLS only, expiring, logged; writable by the processor only,
under ``rejected/`` only, through an endpoint that allows nothing else; named so no two stacks collide."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.naming import Names
from infra.settings import ContextError, load_settings
from ops.target import OUTPUT_KEYS
from tests.infra.conftest import Assembly, Synthesized
from tests.infra.test_security import processor_role, quarantine_bucket, rejected_objects, role_policies

S3_NAME_LIMIT = 63


def buckets(synthesized: Synthesized) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(quarantine bucket, access-log bucket); the `dev` stage has no access-log bucket."""
    found = synthesized.of_type("AWS::S3::Bucket")
    quarantine_id = quarantine_bucket(synthesized)
    others = set(found) - {quarantine_id}
    if load_settings(synthesized.context).is_dev:
        assert others == set(), list(found)
        return found[quarantine_id], None
    (log_id,) = others
    return found[quarantine_id], found[log_id]


def every_bucket(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [bucket for bucket in buckets(synthesized) if bucket is not None]


def bucket_policy(synthesized: Synthesized, bucket: dict[str, Any]) -> list[dict[str, Any]]:
    bucket_id = next(key for key, value in synthesized.resources.items() if value is bucket)
    (policy,) = [
        p
        for p in synthesized.of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_buckets_are_private_encrypted_and_owned_by_the_account(variant: Synthesized) -> None:
    for bucket in every_bucket(variant):
        properties = bucket["Properties"]
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        assert "AccessControl" not in properties


def test_buckets_refuse_plain_http_and_old_tls(variant: Synthesized) -> None:
    for bucket in every_bucket(variant):
        denials = [s for s in bucket_policy(variant, bucket) if s["Effect"] == "Deny"]
        conditions = [s["Condition"] for s in denials]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions
        for denial in denials:
            assert denial["Action"] == "s3:*"
            assert denial["Principal"] == {"AWS": "*"}


def test_rejected_bodies_expire_after_the_context_retention(assembly: Assembly) -> None:
    for name, days in (("default", 30), ("prod", 90)):
        quarantine, _ = buckets(assembly.variants[name])
        (rule,) = quarantine["Properties"]["LifecycleConfiguration"]["Rules"]
        assert rule["Status"] == "Enabled"
        assert rule["ExpirationInDays"] == days
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert load_settings({}).quarantine_retention_days == 30
    for refused in ("0", "3651", "a month"):
        with pytest.raises(ContextError, match="quarantineRetentionDays"):
            load_settings({"quarantineRetentionDays": refused})


def test_every_request_to_the_quarantine_is_logged_to_the_access_log_bucket(variant: Synthesized) -> None:
    quarantine, logs = buckets(variant)
    if logs is None:  # dev: see test_dev_logs_no_requests_so_its_stack_deletes_cleanly
        return
    log_id = next(key for key, value in variant.resources.items() if value is logs)
    quarantine_id = quarantine_bucket(variant)
    assert quarantine["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": log_id},
        "LogFilePrefix": "quarantine/",
    }
    (delivery,) = [s for s in bucket_policy(variant, logs) if s.get("Sid") == "S3ServerAccessLogs"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [quarantine_id, "Arn"]}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    (rule,) = logs["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 365


def test_dev_logs_no_requests_so_its_stack_deletes_cleanly(synthesized: Synthesized) -> None:
    """S3 delivers access logs late, after CDK's auto-delete has emptied the log bucket, and the
    bucket's deletion then fails with BucketNotEmpty: the disposable stage has no access log."""
    quarantine, logs = buckets(synthesized)
    assert logs is None
    assert "LoggingConfiguration" not in quarantine["Properties"]
    assert synthesized.nag_findings == []


def test_names_carry_the_stage_and_the_stack_id_and_fit_s3s_limit(variant: Synthesized) -> None:
    stage = load_settings(variant.context).stage
    stack_uuid_first_group = {
        "Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]}]
    }
    quarantine, logs = buckets(variant)
    for bucket, name in ((quarantine, "quarantine"), (logs, "access-logs")):
        if bucket is None:
            continue
        assert bucket["Properties"]["BucketName"] == {
            "Fn::Join": ["", [f"telemetry-adapter-{stage}-{name}-", stack_uuid_first_group]]
        }
    longest_stage = "s" * 20
    for name in ("quarantine", "access-logs"):
        assert len(Names(longest_stage).bucket(name, "0" * 8)) <= S3_NAME_LIMIT


def test_removal_follows_the_stage(assembly: Assembly) -> None:
    dev, prod = assembly.variants["default"], assembly.variants["prod"]
    for bucket in every_bucket(dev):
        assert bucket["DeletionPolicy"] == "Delete"  # emptied first by CDK's auto-delete custom resource
    assert len(dev.of_type("Custom::S3AutoDeleteObjects")) == 1
    for bucket in every_bucket(prod):
        assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    assert prod.of_type("Custom::S3AutoDeleteObjects") == {}


def test_only_the_processor_writes_and_only_under_rejected(variant: Synthesized) -> None:
    env = variant.resources["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["QUARANTINE_BUCKET"] == {"Ref": quarantine_bucket(variant)}
    (statement,) = [
        s for s in role_policies(variant, processor_role(variant)) if "s3" in json.dumps(s["Action"]).lower()
    ]
    assert statement == {"Action": "s3:PutObject", "Effect": "Allow", "Resource": rejected_objects(variant)}
    quarantine_id = quarantine_bucket(variant)
    granted = [
        policy
        for policy in variant.of_type("AWS::IAM::Policy").values()
        if quarantine_id in json.dumps(policy["Properties"]["PolicyDocument"])
    ]
    assert [policy["Properties"]["Roles"] for policy in granted] == [[{"Ref": processor_role(variant)}]]


def test_s3_endpoint_resolves_for_the_vpc_and_allows_only_writing_rejected_bodies(variant: Synthesized) -> None:
    (endpoint,) = [
        e["Properties"]
        for e in variant.of_type("AWS::EC2::VPCEndpoint").values()
        if '.s3"' in json.dumps(e["Properties"]["ServiceName"])  # "com.amazonaws.<region>.s3", region maybe a token
    ]
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["PrivateDnsEnabled"] is True
    # Without it S3 defaults to "inbound resolvers only", which needs a gateway endpoint: the create fails.
    assert endpoint["DnsOptions"] == {"PrivateDnsOnlyForInboundResolverEndpoint": "AllResolvers"}
    (statement,) = endpoint["PolicyDocument"]["Statement"]
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == rejected_objects(variant)


def test_outputs_name_the_bucket_and_the_health_function(synthesized: Synthesized) -> None:
    outputs = synthesized.json["Outputs"]
    assert outputs["QuarantineBucketName"]["Value"] == {"Ref": quarantine_bucket(synthesized)}
    assert outputs["HealthFunctionName"]["Value"] == {"Ref": "HealthFunction"}


def test_the_stack_has_every_output_the_operators_tool_reads(variant: Synthesized) -> None:
    assert set(OUTPUT_KEYS.values()) <= set(variant.json["Outputs"])
