"""Every alarm (metric, threshold, SNS action) and the dashboard's widgets, in the synthesized template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.settings import DEFAULT_RUNBOOK_URL
from tests.infra.conftest import PAGED, ROOT, Assembly, Synthesized

APP = {"Namespace": "TelemetryAdapter", "Dimensions": [{"Name": "service", "Value": "telemetry-adapter"}]}


def alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    prefix = f"TelemetryAdapter-{synthesized.stack.names.stage}-"
    return {
        value["Properties"]["AlarmName"].removeprefix(prefix): value["Properties"]
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
        ("CircuitBreakerOpen", "CircuitBreakerOpen", "TelemetryAdapter", 1, "GreaterThanOrEqualToThreshold"),
        ("QuarantineWriteFailures", "QuarantineWriteFailures", "TelemetryAdapter", 1, "GreaterThanOrEqualToThreshold"),
        (
            "DeadLetterQueueMessagesExpiring",
            "ApproximateAgeOfOldestMessage",
            "AWS/SQS",
            8 * 86_400,
            "GreaterThanOrEqualToThreshold",
        ),
        ("LedgerStorageLow", "FreeStorageSpace", "AWS/RDS", 2 * 1024**3, "LessThanThreshold"),
        ("LedgerCpuCreditsLow", "CPUCreditBalance", "AWS/RDS", 20, "LessThanThreshold"),
        ("ProxyAuthFailures", "ClientConnectionsSetupFailedAuth", "AWS/RDS", 1, "GreaterThanOrEqualToThreshold"),
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
    assert alarm["AlarmDescription"].endswith(f" Runbook: {DEFAULT_RUNBOOK_URL}#{name.lower()}")
    if namespace == "TelemetryAdapter":
        assert alarm["Dimensions"] == APP["Dimensions"]


def test_quarantine_write_failures_page_when_they_last_ten_minutes(synthesized: Synthesized) -> None:
    """One failed write costs a redelivery only; failures in two five-minute periods running walk
    every rejected message towards the dead-letter queue."""
    alarm = alarms(synthesized)["QuarantineWriteFailures"]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (300, 2, 2)
    assert alarm["Statistic"] == "Sum"


def test_dlq_alarm_watches_the_dead_letter_queue(synthesized: Synthesized) -> None:
    alarm = alarms(synthesized)["DeadLetterQueueNotEmpty"]
    (queue_name,) = [d["Value"] for d in alarm["Dimensions"] if d["Name"] == "QueueName"]
    dlq_id = next(
        k
        for k, v in synthesized.of_type("AWS::SQS::Queue").items()
        if v["Properties"]["QueueName"] == "telemetry-adapter-dev-submissions-dlq"
    )
    assert queue_name == {"Fn::GetAtt": [dlq_id, "QueueName"]}
    assert alarm["Period"] == 60
    assert alarm["EvaluationPeriods"] == 1


def test_circuit_breaker_alarm_fires_on_any_open_batch(synthesized: Synthesized) -> None:
    alarm = alarms(synthesized)["CircuitBreakerOpen"]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 300, 1)


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


def test_alarm_topic_is_encrypted(synthesized: Synthesized) -> None:
    topic = next(iter(synthesized.of_type("AWS::SNS::Topic").values()))["Properties"]
    assert "KmsMasterKeyId" in topic


def cleanup_function(synthesized: Synthesized) -> str:
    (logical_id,) = (
        key
        for key, value in synthesized.of_type("AWS::Lambda::Function").items()
        if value["Properties"].get("Handler") == "cleanup.handler.lambda_handler"
    )
    return logical_id


def test_a_failed_cleanup_pages_on_its_own_metric(synthesized: Synthesized) -> None:
    """A single metric: a sum with a second, sparse metric (the clean-up DLQ publishes nothing while it
    is inactive) would have no datapoint whenever either operand has none, and never page."""
    alarm = alarms(synthesized)["CleanupFailed"]
    assert "Metrics" not in alarm
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": cleanup_function(synthesized)}}]
    assert alarm["Period"] == 3600
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"


def test_a_cleanup_that_stops_running_pages_after_26_hours(synthesized: Synthesized) -> None:
    """No invocation for 26 hours: a missed daily run (undelivered schedule event, disabled rule, lost
    permission), with two hours to spare for a late one. No invocation means no datapoint, so missing
    data must count as breaching."""
    alarm = alarms(synthesized)["CleanupNotRunning"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Invocations", "Sum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": cleanup_function(synthesized)}}]
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 26 * 3600
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]
    assert alarm["Period"] >= 3600  # longer evaluation ranges than a day need periods of an hour or more
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["AlarmActions"] == [topic_ref(synthesized)]


def test_cpu_credit_alarm_says_what_an_empty_balance_costs(synthesized: Synthesized) -> None:
    """RDS runs db.t3 and db.t4g in Unlimited mode: an empty balance is not throttled, it is billed."""
    description = alarms(synthesized)["LedgerCpuCreditsLow"]["AlarmDescription"]
    assert "surplus" in description
    assert "throttled" not in description


def test_cpu_credit_alarm_only_for_burstable_classes(assembly: Assembly) -> None:
    assert "LedgerCpuCreditsLow" in alarms(assembly.variants["default"])
    assert "LedgerCpuCreditsLow" not in alarms(assembly.variants["multi-az"])  # r7g.large


def runbook_sections() -> list[str]:
    """The alarm sections: level-two headings that are one CamelCase word (other sections have spaces)."""
    page = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    return re.findall(r"^## ([A-Z][A-Za-z]+)\s*$", page, re.MULTILINE)


def test_every_alarm_has_its_runbook_section_and_links_to_it(assembly: Assembly) -> None:
    sections = runbook_sections()
    assert len(sections) == len(set(sections))
    every_alarm: set[str] = set()
    for synthesized in assembly.variants.values():
        for name, alarm in alarms(synthesized).items():
            every_alarm.add(name)
            assert name in sections, f"docs/runbook.md has no section '## {name}'"
            url = f"{load_runbook_url(synthesized)}#{name.lower()}"
            assert alarm["AlarmDescription"].endswith(f"Runbook: {url}"), alarm["AlarmDescription"]
            assert "README" not in alarm["AlarmDescription"]
    assert set(sections) <= every_alarm, "a runbook section names no alarm"


def load_runbook_url(synthesized: Synthesized) -> str:
    return str(synthesized.context.get("runbookUrl", DEFAULT_RUNBOOK_URL))


def test_paged_variants_link_to_their_own_runbook(assembly: Assembly) -> None:
    alarm = alarms(assembly.variants["prod"])["DeadLetterQueueNotEmpty"]
    assert alarm["AlarmDescription"].endswith(f"{PAGED['runbookUrl']}#deadletterqueuenotempty")


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
        "Dead-letter queue depth and oldest message",
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
        "MessagesBackedOff",
        "BackoffFailures",
        "CircuitBreakerOpen",
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
