"""Every alarm (metric, threshold, SNS action) and the dashboard's widgets, in the synthesized template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Synthesized

APP = {"Namespace": "TelemetryAdapter", "Dimensions": [{"Name": "service", "Value": "telemetry-adapter"}]}


def alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        value["Properties"]["AlarmName"].removeprefix("TelemetryAdapter-"): value["Properties"]
        for value in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    }


def topic_ref(synthesized: Synthesized) -> dict[str, str]:
    (topic_id,) = synthesized.of_type("AWS::SNS::Topic")
    return {"Ref": topic_id}


@pytest.mark.parametrize(
    ("name", "metric", "namespace", "threshold", "operator"),
    [
        ("DeadLetterQueueNotEmpty", "ApproximateNumberOfMessagesVisible", "AWS/SQS", 0, "GreaterThanThreshold"),
        ("OldestMessageAge", "ApproximateAgeOfOldestMessage", "AWS/SQS", 900, "GreaterThanOrEqualToThreshold"),
        ("ProcessorErrors", "Errors", "AWS/Lambda", 1, "GreaterThanOrEqualToThreshold"),
        ("ProcessorThrottles", "Throttles", "AWS/Lambda", 1, "GreaterThanOrEqualToThreshold"),
        ("KinesisPutFailures", "PutRecordsCallsFailed", "TelemetryAdapter", 10, "GreaterThanOrEqualToThreshold"),
        ("KinesisThrottling", "KinesisRecordsThrottled", "TelemetryAdapter", 10, "GreaterThanOrEqualToThreshold"),
        ("LedgerFailures", "LedgerFailures", "TelemetryAdapter", 1, "GreaterThanOrEqualToThreshold"),
    ],
)
def test_single_metric_alarms(
    synthesized: Synthesized, name: str, metric: str, namespace: str, threshold: float, operator: str
) -> None:
    alarm = alarms(synthesized)[name]
    assert alarm["MetricName"] == metric
    assert alarm["Namespace"] == namespace
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == operator
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [topic_ref(synthesized)]
    assert alarm["OKActions"] == [topic_ref(synthesized)]
    assert f"docs/runbook.md#{name.lower()}" in alarm["AlarmDescription"]
    if namespace == "TelemetryAdapter":
        assert alarm["Dimensions"] == APP["Dimensions"]


def test_dlq_alarm_watches_the_dead_letter_queue(synthesized: Synthesized) -> None:
    alarm = alarms(synthesized)["DeadLetterQueueNotEmpty"]
    (queue_name,) = [d["Value"] for d in alarm["Dimensions"] if d["Name"] == "QueueName"]
    dlq_id = next(
        k
        for k, v in synthesized.of_type("AWS::SQS::Queue").items()
        if v["Properties"]["QueueName"] == "submissions-dlq"
    )
    assert queue_name == {"Fn::GetAtt": [dlq_id, "QueueName"]}
    assert alarm["Period"] == 60
    assert alarm["EvaluationPeriods"] == 1


def test_reject_rate_alarm_is_metric_math(synthesized: Synthesized) -> None:
    alarm = alarms(synthesized)["RejectRateHigh"]
    assert alarm["Threshold"] == 5
    assert alarm["AlarmActions"] == [topic_ref(synthesized)]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    assert queries["expr_1"]["Expression"] == "IF(received > 0, 100 * rejected / received, 0)"
    assert queries["received"]["MetricStat"]["Metric"]["MetricName"] == "MessagesReceived"
    assert queries["rejected"]["MetricStat"]["Metric"]["MetricName"] == "SubmissionsRejected"


def test_alarm_thresholds_follow_context(tmp_path: Any) -> None:
    import aws_cdk as cdk

    from infra.monitoring import Monitoring
    from infra.settings import load_settings
    from infra.stack import TelemetryAdapterStack

    settings = load_settings({"alarmOldestMessageAgeSeconds": 120, "alarmRejectRatePercent": 1.5})
    app = cdk.App(outdir=str(tmp_path), context={"aws:cdk:bundling-stacks": []})  # no asset bundling needed
    stack = TelemetryAdapterStack(app, "Thresholds", settings=settings)
    monitoring: Monitoring = stack.monitoring
    resolved = {name: stack.resolve(alarm.node.default_child.threshold) for name, alarm in monitoring.alarms.items()}  # type: ignore[union-attr]
    assert resolved["OldestMessageAge"] == 120
    assert resolved["RejectRateHigh"] == 1.5


def test_alarm_email_subscription_only_when_given(synthesized: Synthesized) -> None:
    assert synthesized.of_type("AWS::SNS::Subscription") == {}
    topic = next(iter(synthesized.of_type("AWS::SNS::Topic").values()))["Properties"]
    assert "KmsMasterKeyId" in topic


def test_dashboard_has_every_widget(synthesized: Synthesized) -> None:
    dashboard = next(iter(synthesized.of_type("AWS::CloudWatch::Dashboard").values()))
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in (
        "Batch latency",
        "Messages received vs acknowledged",
        "Events published",
        "Rejects by reason",
        "Duplicates",
        "Kinesis retries and throttling",
        "PutRecords latency",
        "Ledger statement latency",
        "Queue depth and oldest message",
        "Dead-letter queue depth",
        "Processor duration",
        "Processor concurrent executions",
        "RDS Proxy connections",
        "Ledger database CPU",
        "Processor memory",
        "Alarms",
    ):
        assert title in body, title
    for metric in (
        "BatchLatency",
        "MessagesReceived",
        "MessagesAcknowledged",
        "EventsPublished",
        "SubmissionsRejectedByReason",
        "DuplicatesSuppressed",
        "KinesisRecordsRetried",
        "KinesisRecordsThrottled",
        "PutRecordsLatency",
        "LedgerStatementLatency_claim",
        "LedgerStatementLatency_outcome",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "Duration",
        "Errors",
        "Throttles",
        "ConcurrentExecutions",
        "ClientConnections",
        "DatabaseConnections",
        "memory_utilization",
        "cpu_total_time",
    ):
        assert metric in body, metric
