"""What `cdk deploy` would hit that synth, cdk-nag and cfn-lint cannot see, checked in every variant."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from infra.settings import load_settings
from tests.infra.conftest import Assembly, Synthesized

DB_PORT = 5432
NAMED_PROPERTIES = {
    "AWS::SQS::Queue": "QueueName",
    "AWS::Kinesis::Stream": "Name",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::RDS::DBProxy": "DBProxyName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Events::Rule": "Name",
    "AWS::S3::Bucket": "BucketName",
}
# CDK's own provider functions, named uniquely by CloudFormation: the migration's Provider framework, the
# one that removes the VPC default security group's rules (feature flag in cdk.json), and the dev stage's
# bucket emptier (which runs only when the stack is deleted).
UNNAMED_CDK_FUNCTIONS = (
    "ProviderframeworkonEvent",
    "CustomVpcRestrictDefaultSGCustomResourceProvider",
    "CustomS3AutoDeleteObjectsCustomResourceProvider",
)


def stage_of(synthesized: Synthesized) -> str:
    return load_settings(synthesized.context).stage


def port(value: Any, synthesized: Synthesized) -> Any:
    """A rule's port, with the instance's endpoint-port attribute read as the database port."""
    if isinstance(value, dict) and value.get("Fn::GetAtt", [None, None])[1] == "Endpoint.Port":
        assert synthesized.resources[value["Fn::GetAtt"][0]]["Properties"]["Port"] == str(DB_PORT)
        return DB_PORT
    return value


def security_group_rules(synthesized: Synthesized) -> list[tuple[Any, ...]]:
    rules = []
    for kind, peer_key in (
        ("AWS::EC2::SecurityGroupEgress", "DestinationSecurityGroupId"),
        ("AWS::EC2::SecurityGroupIngress", "SourceSecurityGroupId"),
    ):
        for rule in synthesized.of_type(kind).values():
            props = rule["Properties"]
            peer = props.get(peer_key) or props.get("CidrIp") or props.get("CidrIpv6")
            rules.append(
                (
                    kind,
                    json.dumps(props["GroupId"], sort_keys=True),
                    json.dumps(peer, sort_keys=True),
                    props["IpProtocol"],
                    port(props.get("FromPort"), synthesized),
                    port(props.get("ToPort"), synthesized),
                )
            )
    return rules


# --- deploy fails or gets stuck ------------------------------------------------------------------


def test_no_two_security_group_rules_are_the_same(variant: Synthesized) -> None:
    """EC2 refuses a duplicate rule (InvalidPermission.Duplicate) ten minutes into the first deploy."""
    rules = security_group_rules(variant)
    assert rules
    duplicates = [rule for rule, count in Counter(rules).items() if count > 1]
    assert duplicates == []


def test_every_physical_name_carries_the_stage(variant: Synthesized) -> None:
    stage = re.compile(rf"(^|[-/]){stage_of(variant)}($|[-/])")
    named = 0
    for resource_type, key in NAMED_PROPERTIES.items():
        for logical_id, resource in variant.of_type(resource_type).items():
            name = resource["Properties"].get(key)
            if name is None:
                assert any(unnamed in logical_id for unnamed in UNNAMED_CDK_FUNCTIONS), logical_id
                continue
            text = name if isinstance(name, str) else "".join(p for p in name["Fn::Join"][1] if isinstance(p, str))
            assert stage.search(text), (logical_id, name)
            named += 1
    assert named > 20
    assert variant.stack.stack_name == f"TelemetryAdapter-{stage_of(variant)}"


def test_two_stages_share_no_physical_name(assembly: Assembly) -> None:
    def names(synthesized: Synthesized) -> set[str]:
        return {
            json.dumps(resource["Properties"][key])
            for resource_type, key in NAMED_PROPERTIES.items()
            for resource in synthesized.of_type(resource_type).values()
            if key in resource["Properties"]
        }

    assert names(assembly.variants["default"]) & names(assembly.variants["prod"]) == set()


def test_protection_and_removal_follow_the_stage(assembly: Assembly) -> None:
    dev, prod = assembly.variants["default"], assembly.variants["prod"]
    assert dev.stack.termination_protection is False
    assert prod.stack.termination_protection is True
    (dev_db,) = dev.of_type("AWS::RDS::DBInstance").values()
    (prod_db,) = prod.of_type("AWS::RDS::DBInstance").values()
    assert dev_db["Properties"]["DeletionProtection"] is False
    assert prod_db["Properties"]["DeletionProtection"] is True
    assert (dev_db["DeletionPolicy"], prod_db["DeletionPolicy"]) == ("Delete", "Snapshot")
    (dev_stream,) = dev.of_type("AWS::Kinesis::Stream").values()
    (prod_stream,) = prod.of_type("AWS::Kinesis::Stream").values()
    assert dev_stream["DeletionPolicy"] == "Delete"
    # Kept when the stack is deleted, removed when the first create rolls back (no collision on retry).
    assert prod_stream["DeletionPolicy"] == "RetainExceptOnCreate"
    for log_group in prod.of_type("AWS::Logs::LogGroup").values():
        name = log_group["Properties"]["LogGroupName"]
        # The database's own log goes with the stack (test_lifecycle: a stack stuck in ROLLBACK_FAILED).
        expected = "Delete" if name.startswith("/aws/rds/") else "RetainExceptOnCreate"
        assert log_group["DeletionPolicy"] == expected, name


def test_migration_custom_resource_carries_what_a_rollback_needs(synthesized: Synthesized) -> None:
    (migration,) = synthesized.of_type("Custom::LedgerMigrations").values()
    properties = migration["Properties"]
    function = next(
        v
        for v in synthesized.of_type("AWS::Lambda::Function").values()
        if v["Properties"].get("Handler") == "migrate.handler.on_event"
    )["Properties"]
    assert function["Environment"]["Variables"]["ASSET_HASH"] == properties["AssetHash"]
    assert properties["SchemaVersion"] >= 1
    assert function["Timeout"] >= 600  # room for the first-connection retries


def test_proxy_reaches_secrets_manager_through_its_endpoint(synthesized: Synthesized) -> None:
    (proxy,) = synthesized.of_type("AWS::RDS::DBProxy").values()
    endpoint_id = next(
        k
        for k, v in synthesized.of_type("AWS::EC2::VPCEndpoint").items()
        if "secretsmanager" in json.dumps(v["Properties"]["ServiceName"])
    )
    assert endpoint_id in proxy["DependsOn"]
    (proxy_group,) = proxy["Properties"]["VpcSecurityGroupIds"]
    endpoint_groups = synthesized.resources[endpoint_id]["Properties"]["SecurityGroupIds"]
    egress = [r["Properties"] for r in synthesized.of_type("AWS::EC2::SecurityGroupEgress").values()]
    ingress = [r["Properties"] for r in synthesized.of_type("AWS::EC2::SecurityGroupIngress").values()]
    assert any(
        r["GroupId"] == proxy_group and r["DestinationSecurityGroupId"] in endpoint_groups and r["FromPort"] == 443
        for r in egress
    )
    assert any(
        r["GroupId"] in endpoint_groups and r.get("SourceSecurityGroupId") == proxy_group and r["FromPort"] == 443
        for r in ingress
    )


def test_proxy_borrow_timeout_is_below_the_statement_timeout(synthesized: Synthesized) -> None:
    (target_group,) = synthesized.of_type("AWS::RDS::DBProxyTargetGroup").values()
    borrow = target_group["Properties"]["ConnectionPoolConfigurationInfo"]["ConnectionBorrowTimeout"]
    env = synthesized.resources["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    assert 1 <= borrow * 1000 < int(env["LEDGER_STATEMENT_TIMEOUT_MS"])
    # The clean-up's chunks wait longer than the proxy's borrow timeout too (it reads its own variable).
    (cleanup,) = (
        resource
        for resource in synthesized.of_type("AWS::Lambda::Function").values()
        if resource["Properties"]["Handler"] == "cleanup.handler.lambda_handler"
    )
    cleanup_env = cleanup["Properties"]["Environment"]["Variables"]
    assert "LEDGER_STATEMENT_TIMEOUT_MS" not in cleanup_env
    assert borrow * 1000 < int(cleanup_env["CLEANUP_STATEMENT_TIMEOUT_MS"])


# --- deploys, then misbehaves ----------------------------------------------------------------------


def test_cloudwatch_may_publish_to_the_alarm_topic(variant: Synthesized) -> None:
    (policy,) = variant.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    alarm_arns = allow["Condition"]["ArnLike"]["aws:SourceArn"]
    alarms = variant.of_type("AWS::CloudWatch::Alarm")
    assert sorted(json.dumps(a) for a in alarm_arns) == sorted(
        json.dumps({"Fn::GetAtt": [alarm_id, "Arn"]}) for alarm_id in alarms
    )
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_cloudwatch_may_use_the_topic_key_only_for_our_alarms(variant: Synthesized) -> None:
    (key,) = variant.of_type("AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source = json.dumps(cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"])
    assert f":alarm:TelemetryAdapter-{stage_of(variant)}-*" in source


def test_alarm_topic_subscription(assembly: Assembly) -> None:
    assert assembly.variants["default"].of_type("AWS::SNS::Subscription") == {}
    (subscription,) = assembly.variants["prod"].of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"


def test_the_committed_stage_values_reach_the_template(assembly: Assembly) -> None:
    """cdk.json's stages.prod makes the prod ledger Multi-AZ with no -c on the command line."""
    assert "dbMultiAz" not in assembly.variants["prod"].context
    (instance,) = assembly.variants["prod"].of_type("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["MultiAZ"] is True
    (dev_instance,) = assembly.variants["default"].of_type("AWS::RDS::DBInstance").values()
    assert dev_instance["Properties"]["MultiAZ"] is False


def test_functions_that_use_the_ledger_wait_for_the_migration(variant: Synthesized) -> None:
    (migration_id,) = variant.of_type("Custom::LedgerMigrations")
    functions = variant.of_type("AWS::Lambda::Function")
    by_handler = {v["Properties"].get("Handler"): v for v in functions.values()}
    for handler in (
        "processor.handler.lambda_handler",
        "health.handler.lambda_handler",
        "cleanup.handler.lambda_handler",
    ):
        assert migration_id in by_handler[handler].get("DependsOn", []), handler
    (mapping,) = variant.of_type("AWS::Lambda::EventSourceMapping").values()
    assert migration_id in mapping["DependsOn"]


def test_storage_grows_by_itself(synthesized: Synthesized) -> None:
    (instance,) = synthesized.of_type("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["AllocatedStorage"] == "20"
    assert instance["Properties"]["MaxAllocatedStorage"] == 100


def test_cleanup_schedule_keeps_undelivered_events(synthesized: Synthesized) -> None:
    (rule,) = synthesized.of_type("AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert synthesized.resources[queue_id]["Properties"]["QueueName"] == "telemetry-adapter-dev-cleanup-dlq"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2


def test_processor_environment_for_retries_budget_and_its_queue(synthesized: Synthesized) -> None:
    settings = load_settings({})
    env = synthesized.resources["ProcessorFunction"]["Properties"]["Environment"]["Variables"]
    assert env["RETRY_BASE_DELAY_SECONDS"] == str(settings.retry_base_delay_seconds)
    assert env["RETRY_MAX_DELAY_SECONDS"] == str(settings.retry_max_delay_seconds)
    assert env["LEDGER_STATEMENT_TIMEOUT_MS"] == str(settings.ledger_statement_timeout_ms)
    assert env["TIME_BUDGET_MARGIN_MS"] == str(settings.time_budget_margin_ms)
    assert env["LEDGER_RETENTION_DAYS"] == "18"
    queue_id = env["QUEUE_URL"]["Ref"]
    assert synthesized.resources[queue_id]["Properties"]["QueueName"] == "telemetry-adapter-dev-submissions"


def test_lambdas_log_filter_keeps_the_metric_documents(variant: Synthesized) -> None:
    """EMF metric lines carry no level, so Lambda files them as INFO: a filter above INFO drops them."""
    settings = load_settings(variant.context)
    ours = 0
    for function in variant.of_type("AWS::Lambda::Function").values():
        properties = function["Properties"]
        if not properties.get("Handler", "").startswith(("processor.", "health.", "cleanup.", "migrate.")):
            continue
        ours += 1
        config = properties["LoggingConfig"]
        assert config["LogFormat"] == "JSON"
        assert config["ApplicationLogLevel"] in ("DEBUG", "INFO")
        assert config["ApplicationLogLevel"] == ("DEBUG" if settings.log_level == "DEBUG" else "INFO")
        assert properties["Environment"]["Variables"]["LOG_LEVEL"] == settings.log_level
    assert ours == 4


def test_interface_endpoints_allow_only_our_resources(variant: Synthesized) -> None:
    for logical_id, endpoint in variant.of_type("AWS::EC2::VPCEndpoint").items():
        if endpoint["Properties"]["VpcEndpointType"] != "Interface":
            continue
        (statement,) = endpoint["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "monitoring" not in json.dumps(endpoint["Properties"]["ServiceName"]):
            assert "*" not in resources, logical_id


def test_public_health_url_gets_a_small_reserved_concurrency(assembly: Assembly) -> None:
    public = assembly.variants["public-health"].resources["HealthFunction"]["Properties"]
    assert public["ReservedConcurrentExecutions"] == 2
    # ... and knows it is public, so it answers statuses only (functions/health/public.py).
    assert public["Environment"]["Variables"]["HEALTH_URL_AUTH"] == "NONE"
    private = assembly.variants["default"].resources["HealthFunction"]["Properties"]
    assert private["Environment"]["Variables"]["HEALTH_URL_AUTH"] == "AWS_IAM"
    (url,) = assembly.variants["public-health"].of_type("AWS::Lambda::Url").values()
    assert url["Properties"]["AuthType"] == "NONE"


def test_outputs_name_log_groups_and_the_dashboard(synthesized: Synthesized) -> None:
    outputs = synthesized.json["Outputs"]
    for role in ("Processor", "Health", "Migration", "Cleanup"):
        group_id = outputs[f"{role}LogGroup"]["Value"]["Ref"]
        name = synthesized.resources[group_id]["Properties"]["LogGroupName"]
        assert name == f"/aws/lambda/telemetry-adapter-dev-{role.lower()}"
    url = json.dumps(outputs["DashboardUrl"]["Value"])
    assert "#dashboards/dashboard/TelemetryAdapter-dev" in url
    assert outputs["Stage"]["Value"] == "dev"


def test_variant_specific_settings(assembly: Assembly) -> None:
    (stream,) = assembly.variants["provisioned-stream"].of_type("AWS::Kinesis::Stream").values()
    assert stream["Properties"]["ShardCount"] == 2
    assert stream["Properties"]["RetentionPeriodHours"] == 48
    (instance,) = assembly.variants["multi-az"].of_type("AWS::RDS::DBInstance").values()
    assert instance["Properties"]["MultiAZ"] is True
    assert "TracingConfig" not in assembly.variants["no-tracing"].resources["ProcessorFunction"]["Properties"]
    for name in ("no-insights", "local"):
        assert "Layers" not in assembly.variants[name].resources["ProcessorFunction"]["Properties"], name
    assert "Layers" in assembly.variants["default"].resources["ProcessorFunction"]["Properties"]
    pinned = assembly.variants["pinned"].stack
    assert (pinned.account, pinned.region) == ("123456789012", "eu-west-1")
