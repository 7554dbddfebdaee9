"""The synthesized template holds every resource and setting the deployment needs."""

from __future__ import annotations

import json
import re
from typing import Any

from telemetry_adapter import handback
from telemetry_adapter.config import Settings
from tests.infra.conftest import Synthesized


def only(resources: dict[str, Any]) -> dict[str, Any]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.values()))


def queue(synthesized: Synthesized, name: str) -> tuple[str, dict[str, Any]]:
    for key, value in synthesized.of_type("AWS::SQS::Queue").items():
        if value["Properties"]["QueueName"] == name:
            return key, value["Properties"]
    raise AssertionError(f"no queue {name}")


def test_queues_encrypted_tls_only_with_redrive(synthesized: Synthesized) -> None:
    dlq_id, dlq = queue(synthesized, "telemetry-adapter-dev-submissions-dlq")
    _, main = queue(synthesized, "telemetry-adapter-dev-submissions")
    assert main["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    assert main["VisibilityTimeout"] == 360
    assert dlq["MessageRetentionPeriod"] == 14 * 86_400
    receives = synthesized.stack.queues.queue.dead_letter_queue.max_receive_count  # type: ignore[union-attr]
    assert main["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": receives,
    }
    assert receives > 5  # derived from the outage tolerance
    policies = synthesized.of_type("AWS::SQS::QueuePolicy")
    assert len(policies) == 3  # the queue, its DLQ, the clean-up schedule's DLQ
    for policy in policies.values():
        statement = policy["Properties"]["PolicyDocument"]["Statement"][0]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_queues_take_the_largest_body_the_processor_accepts_and_the_hand_back_sends(synthesized: Synthesized) -> None:
    """Explicit, not the service default: the main queue takes any body up to ``MAX_BODY_BYTES``, its
    dead-letter queue what the main queue moves there, and a hand-back call, packed up to the same
    size, never holds more than the queue takes (SQS refuses an over-size batch as a whole)."""
    _, dlq = queue(synthesized, "telemetry-adapter-dev-submissions-dlq")
    _, main = queue(synthesized, "telemetry-adapter-dev-submissions")
    largest_body = Settings(stream_name="events").limits.max_body_bytes
    assert main["MaximumMessageSize"] == dlq["MaximumMessageSize"] == largest_body
    assert main["MaximumMessageSize"] == handback.MAX_BYTES_PER_CALL


def test_stream_on_demand_and_kms_encrypted(synthesized: Synthesized) -> None:
    stream = only(synthesized.of_type("AWS::Kinesis::Stream"))["Properties"]
    assert stream["Name"] == "telemetry-adapter-dev-events"
    assert stream["RetentionPeriodHours"] == 24
    assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in stream
    assert stream["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}


def test_vpc_is_isolated_with_endpoints_and_no_nat(synthesized: Synthesized) -> None:
    assert synthesized.of_type("AWS::EC2::NatGateway") == {}
    assert synthesized.of_type("AWS::EC2::InternetGateway") == {}
    for subnet in synthesized.of_type("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    # ServiceName is com.amazonaws.<region>.<service>, the region being a token in an agnostic stack.
    services = {
        re.search(r"\.([a-z0-9-]+)\"\]\]\}$", json.dumps(endpoint["Properties"]["ServiceName"])).group(1)  # type: ignore[union-attr]
        for endpoint in synthesized.of_type("AWS::EC2::VPCEndpoint").values()
    }
    assert {"kinesis-streams", "sqs", "monitoring", "secretsmanager", "logs", "s3"} <= services
    for endpoint in synthesized.of_type("AWS::EC2::VPCEndpoint").values():
        assert endpoint["Properties"]["VpcEndpointType"] == "Interface"
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True


def test_postgres_instance_private_encrypted_iam(synthesized: Synthesized) -> None:
    instance = only(synthesized.of_type("AWS::RDS::DBInstance"))["Properties"]
    assert instance["Engine"] == "postgres"
    assert instance["DBInstanceClass"] == "db.t4g.micro"
    assert instance["StorageEncrypted"] is True
    assert instance["PubliclyAccessible"] is False
    assert instance["EnableIAMDatabaseAuthentication"] is True
    assert instance["MultiAZ"] is False
    assert instance["DeletionProtection"] is False  # dev; other stages: see test_deployability
    parameters = only(synthesized.of_type("AWS::RDS::DBParameterGroup"))["Properties"]["Parameters"]
    assert parameters["rds.force_ssl"] == "1"


def test_proxy_requires_iam_and_tls(synthesized: Synthesized) -> None:
    proxy = only(synthesized.of_type("AWS::RDS::DBProxy"))["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["EngineFamily"] == "POSTGRESQL"
    assert len(proxy["Auth"]) == 3  # the admin (migration), the app user, the health function's reader
    assert all(auth["IAMAuth"] == "REQUIRED" for auth in proxy["Auth"])


def test_processor_function(synthesized: Synthesized) -> None:
    processor = synthesized.resources["ProcessorFunction"]["Properties"]
    assert processor["Handler"] == "processor.handler.lambda_handler"
    assert processor["Runtime"] == "python3.12"
    assert processor["Architectures"] == ["arm64"]
    assert processor["Timeout"] == 60
    assert processor["FunctionName"] == "telemetry-adapter-dev-processor"
    assert processor["MemorySize"] == 512
    assert processor["TracingConfig"] == {"Mode": "Active"}
    assert "VpcConfig" in processor
    env = processor["Environment"]["Variables"]
    for name in (
        "STREAM_NAME",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
        "TIME_BUDGET_MARGIN_MS",
        "LEDGER_RETENTION_DAYS",
    ):
        assert name in env, name
    assert env["DB_USER"] == "telemetry_app"
    assert env["POWERTOOLS_SERVICE_NAME"] == "telemetry-adapter"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "TelemetryAdapter"
    proxy_id, attribute = env["DB_HOST"]["Fn::GetAtt"]
    assert synthesized.resources[proxy_id]["Type"] == "AWS::RDS::DBProxy"
    assert attribute == "Endpoint"


def test_event_source_mapping_reports_item_failures_after_migration(synthesized: Synthesized) -> None:
    mapping = only(synthesized.of_type("AWS::Lambda::EventSourceMapping"))
    properties = mapping["Properties"]
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == 100
    assert properties["MaximumBatchingWindowInSeconds"] == 5
    assert properties["ScalingConfig"] == {"MaximumConcurrency": 10}
    assert properties["FunctionName"] == {"Ref": "ProcessorFunction"}
    (migration_id,) = synthesized.of_type("Custom::LedgerMigrations")
    assert migration_id in mapping["DependsOn"]


def test_migration_custom_resource(synthesized: Synthesized) -> None:
    migration = only(synthesized.of_type("Custom::LedgerMigrations"))
    assert "AssetHash" in migration["Properties"]
    functions = synthesized.of_type("AWS::Lambda::Function")
    handlers = {value["Properties"].get("Handler") for value in functions.values()}
    assert {"migrate.handler.on_event", "cleanup.handler.lambda_handler", "health.handler.lambda_handler"} <= handlers
    migrate = next(v for v in functions.values() if v["Properties"].get("Handler") == "migrate.handler.on_event")
    assert migrate["Properties"]["Environment"]["Variables"]["DB_USER"] == "postgres"
    assert migrate["Properties"]["Environment"]["Variables"]["APP_DB_USER"] == "telemetry_app"
    assert migrate["Properties"]["Environment"]["Variables"]["HEALTH_DB_USER"] == "telemetry_health"
    assert migration["Properties"]["HealthUser"] == "telemetry_health"


def test_daily_cleanup_rule(synthesized: Synthesized) -> None:
    rule = only(synthesized.of_type("AWS::Events::Rule"))["Properties"]
    assert rule["ScheduleExpression"] == "cron(17 3 * * ? *)"
    assert rule["Name"] == "telemetry-adapter-dev-daily-cleanup"
    assert rule["State"] == "ENABLED"
    target = rule["Targets"][0]["Arn"]["Fn::GetAtt"][0]
    assert synthesized.resources[target]["Properties"]["Handler"] == "cleanup.handler.lambda_handler"


def test_health_function_url_uses_iam_auth(synthesized: Synthesized) -> None:
    url = only(synthesized.of_type("AWS::Lambda::Url"))["Properties"]
    assert url["AuthType"] == "AWS_IAM"
    assert url["TargetFunctionArn"] == {"Fn::GetAtt": ["HealthFunction", "Arn"]}
    env = synthesized.resources["HealthFunction"]["Properties"]["Environment"]["Variables"]
    for name in (
        "STREAM_NAME",
        "QUEUE_URL",
        "DLQ_URL",
        "DB_HOST",
        "HEARTBEAT_MAX_AGE_SECONDS",
        "HEALTH_CHECK_TIMEOUT_MS",
    ):
        assert name in env, name
    assert env["HEARTBEAT_MAX_AGE_SECONDS"] == "900"
    assert synthesized.resources["HealthFunction"]["Properties"]["Timeout"] == 9  # 2 x 2 s checks + 5 s
    assert "ReservedConcurrentExecutions" not in synthesized.resources["HealthFunction"]["Properties"]
    assert env["HEALTH_CHECK_TIMEOUT_MS"] == "2000"
