"""Alarms that page through SNS, and the operations dashboard.

The processor's own figures are EMF metrics (``functions/telemetry_adapter/reporting.py``) in
namespace ``TelemetryAdapter`` with dimension ``service=telemetry-adapter``; the rest are AWS platform
metrics (SQS, Lambda, Kinesis, RDS, RDS Proxy, Lambda Insights).

Each alarm has a section of the runbook (``docs/runbook.md``) headed with the alarm's short name, and
its description ends with the full URL of that section, built from the ``runbookUrl`` context value,
so the person paged by e-mail can open it.

The alarm topic is encrypted with a key of ours and refuses plain-HTTP publishers. Its policy lets
CloudWatch publish, but only for this account's alarms of this stack (``aws:SourceAccount`` and the
alarms' ARNs); the key's policy lets CloudWatch use the key under the same conditions (by the
stage's alarm-name prefix there: the key cannot name alarms that are created after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.database import LedgerDatabase
from infra.functions import METRICS_NAMESPACE, SERVICE_NAME, Functions
from infra.ingest import IngestQueues
from infra.naming import Names
from infra.settings import DLQ_RETENTION_DAYS, DeploySettings

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
ONE_HOUR = Duration.hours(1)
GIB = 1024**3
DAY_SECONDS = 86_400
CLEANUP_SILENCE_HOURS = 26
"""A daily clean-up missed once: 24 hours and two to spare for a late or retried delivery."""
QUARANTINE_WRITE_FAILURES_THRESHOLD = 1
"""Any failed quarantine write, in two five-minute periods running: one S3 blip is retried by SQS
redelivery alone, a lasting one walks every rejected message towards the dead-letter queue."""
BURSTABLE_FAMILY_PREFIX = "t"
"""Instance classes with CPU credits (t3, t4g): their CPUCreditBalance is watched. RDS runs them in
Unlimited mode, so an empty balance costs money (surplus credits), not speed. The alarm watches the
balance rather than CPUSurplusCreditsCharged, which only moves once the money is being spent: the
balance warns hours before, while a larger class is still a choice rather than a bill."""


def runbook_anchor(alarm: str) -> str:
    """The runbook section's anchor: MkDocs makes ``## DeadLetterQueueNotEmpty`` ``#deadletterqueuenotempty``."""
    return alarm.lower()


def app_metric(
    name: str, statistic: str = "Sum", period: Duration = FIVE_MINUTES, label: str | None = None
) -> cw.Metric:
    """One of the processor's EMF metrics."""
    return cw.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE_NAME},
        statistic=statistic,
        period=period,
        label=label,
    )


@dataclass(frozen=True)
class _AlarmSpec:
    name: str
    metric: cw.IMetric
    threshold: float
    comparison: cw.ComparisonOperator
    description: str
    evaluation_periods: int = 1
    missing_data: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING
    """Most alarms watch for something happening; one that watches for something NOT happening (a
    metric that has no datapoint when nothing ran) must count missing data as breaching."""


class Monitoring(Construct):
    """The alarm topic (``topic``), the alarms (``alarms`` by name) and the ``dashboard``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        names: Names,
        queues: IngestQueues,
        stream: kinesis.Stream,
        database: LedgerDatabase,
        functions: Functions,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._names = names
        self._queues = queues
        self._stream = stream
        self._database = database
        self._functions = functions
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        alarm_arn_prefix = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{names.alarm_prefix}"
        # It encrypts notifications in flight only: once the topic is gone nothing needs it, in any stage.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            enable_key_rotation=True,
            description="Encrypts the alarm topic",
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch publishes alarm notifications to the encrypted topic, so it must use the key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": f"{alarm_arn_prefix}*"},
                },
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=names.resource("alarms"),
            display_name=f"Telemetry Adapter alarms ({names.stage})",
            master_key=key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        self.alarms = {spec.name: self._alarm(spec) for spec in self._alarm_specs(settings)}
        # enforce_ssl makes CDK write a topic policy, which replaces SNS's default one: without this
        # statement CloudWatch could not publish and every alarm would fail silently.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": [alarm.alarm_arn for alarm in self.alarms.values()]},
                },
            )
        )
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=names.dashboard, widgets=self._widgets())

    def _alarm_specs(self, settings: DeploySettings) -> list[_AlarmSpec]:
        return self._pipeline_alarms(settings) + self._database_alarms(settings) + self._cleanup_alarms()

    def _pipeline_alarms(self, settings: DeploySettings) -> list[_AlarmSpec]:
        queues, processor = self._queues, self._functions.processor
        at_least = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        reject_rate = cw.MathExpression(
            expression="IF(received > 0, 100 * rejected / received, 0)",
            using_metrics={
                "received": app_metric("MessagesReceived"),
                "rejected": app_metric("SubmissionsRejected"),
            },
            period=FIVE_MINUTES,
            label="Rejected submissions (% of messages received)",
        )
        return [
            _AlarmSpec(
                "DeadLetterQueueNotEmpty",
                queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=ONE_MINUTE, statistic="Maximum"
                ),
                0,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "Messages reached the dead-letter queue: valid data is waiting for a redrive.",
            ),
            _AlarmSpec(
                "DeadLetterQueueMessagesExpiring",
                queues.dead_letter_queue.metric_approximate_age_of_oldest_message(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                settings.dead_letter_age_alarm_days * DAY_SECONDS,
                at_least,
                f"A message has waited {settings.dead_letter_age_alarm_days} days in the dead-letter queue; "
                f"SQS deletes it {DLQ_RETENTION_DAYS} days after its original send: redrive it now.",
            ),
            _AlarmSpec(
                "OldestMessageAge",
                queues.queue.metric_approximate_age_of_oldest_message(period=ONE_MINUTE, statistic="Maximum"),
                settings.alarm_oldest_message_age_seconds,
                at_least,
                "The oldest submission has waited too long: the processor is down, stuck or too slow.",
                evaluation_periods=5,
            ),
            _AlarmSpec(
                "ProcessorErrors",
                processor.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                settings.alarm_errors_threshold,
                at_least,
                "Processor invocations failed as a whole (crash, timeout, configuration error).",
            ),
            _AlarmSpec(
                "ProcessorThrottles",
                processor.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                settings.alarm_throttles_threshold,
                at_least,
                "Lambda throttled the processor: account concurrency is exhausted.",
            ),
            _AlarmSpec(
                "KinesisPutFailures",
                app_metric("PutRecordsCallsFailed"),
                settings.alarm_put_failures_threshold,
                at_least,
                "PutRecords calls failed as a whole (Kinesis unreachable, access denied, errors).",
            ),
            _AlarmSpec(
                "KinesisThrottling",
                app_metric("KinesisRecordsThrottled"),
                settings.alarm_put_failures_threshold,
                at_least,
                "Kinesis throttled records (ProvisionedThroughputExceeded): the stream lacks capacity.",
            ),
            _AlarmSpec(
                "RejectRateHigh",
                reject_rate,
                settings.alarm_reject_rate_percent,
                cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                "Too many submissions are invalid: a broken sensor release or hostile input.",
                evaluation_periods=2,
            ),
            _AlarmSpec(
                "LedgerFailures",
                app_metric("LedgerFailures"),
                settings.alarm_ledger_failures_threshold,
                at_least,
                "Batches could not reach the ledger database (RDS Proxy or PostgreSQL down or overloaded).",
            ),
            _AlarmSpec(
                "CircuitBreakerOpen",
                app_metric("CircuitBreakerOpen", statistic="Maximum"),
                1,
                at_least,
                "A processor's circuit breaker is open: the ledger or Kinesis kept failing, so batches fail fast "
                "and their messages wait in the queue with a growing backoff.",
            ),
            _AlarmSpec(
                "QuarantineWriteFailures",
                app_metric("QuarantineWriteFailures"),
                QUARANTINE_WRITE_FAILURES_THRESHOLD,
                at_least,
                "Rejected messages could not be stored in the quarantine bucket (S3 or its endpoint unreachable, "
                "access denied): they stay on the queue and reach the dead-letter queue if it lasts.",
                evaluation_periods=2,
            ),
        ]

    def _database_alarms(self, settings: DeploySettings) -> list[_AlarmSpec]:
        instance, proxy = self._database.instance, self._database.proxy
        specs = [
            _AlarmSpec(
                "LedgerStorageLow",
                instance.metric_free_storage_space(period=FIVE_MINUTES, statistic="Minimum"),
                settings.alarm_free_storage_gb * GIB,
                cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                f"The ledger database has less than {settings.alarm_free_storage_gb} GiB free (storage autoscaling "
                f"stops at {settings.db_max_allocated_storage_gb} GiB).",
            ),
            _AlarmSpec(
                "ProxyAuthFailures",
                cw.Metric(
                    namespace="AWS/RDS",
                    metric_name="ClientConnectionsSetupFailedAuth",
                    dimensions_map={"ProxyName": proxy.db_proxy_name},
                    statistic="Sum",
                    period=FIVE_MINUTES,
                ),
                1,
                cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                "Functions failed to sign in to RDS Proxy (IAM token, rds-db:connect grant or TLS).",
            ),
        ]
        if settings.db_instance_class.startswith(BURSTABLE_FAMILY_PREFIX):
            specs.append(
                _AlarmSpec(
                    "LedgerCpuCreditsLow",
                    instance.metric("CPUCreditBalance", period=FIVE_MINUTES, statistic="Minimum"),
                    settings.alarm_cpu_credit_balance,
                    cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                    "The burstable ledger instance is running out of CPU credits: it runs above its baseline, "
                    "and RDS bills the surplus CPU (Unlimited mode) once the balance is spent.",
                    evaluation_periods=3,
                )
            )
        return specs

    def _cleanup_alarms(self) -> list[_AlarmSpec]:
        """A failed run, and no run at all. Two alarms on one metric each: a sum with the clean-up
        DLQ's depth would have no datapoint whenever the DLQ, inactive most of the time, publishes
        none. An event the schedule could not deliver shows up as no run (it waits in the DLQ)."""
        cleanup = self._functions.cleanup
        return [
            _AlarmSpec(
                "CleanupFailed",
                cleanup.metric_errors(period=ONE_HOUR, statistic="Sum"),
                1,
                cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                "The daily ledger clean-up failed; the ledger grows until it runs.",
            ),
            _AlarmSpec(
                "CleanupNotRunning",
                cleanup.metric_invocations(period=ONE_HOUR, statistic="Sum"),
                1,
                cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                f"The daily ledger clean-up has not run for {CLEANUP_SILENCE_HOURS} hours (schedule event "
                "undelivered, rule disabled, or a new stage before its first run).",
                evaluation_periods=CLEANUP_SILENCE_HOURS,
                missing_data=cw.TreatMissingData.BREACHING,
            ),
        ]

    def _alarm(self, spec: _AlarmSpec) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            spec.name,
            alarm_name=self._names.alarm(spec.name),
            alarm_description=f"{spec.description} Runbook: {self.runbook_url(spec.name)}",
            metric=spec.metric,
            threshold=spec.threshold,
            comparison_operator=spec.comparison,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.evaluation_periods,
            treat_missing_data=spec.missing_data,
        )
        action = cw_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        return alarm

    def runbook_url(self, alarm: str) -> str:
        """The full URL of the alarm's runbook section."""
        return f"{self._settings.runbook_url}#{runbook_anchor(alarm)}"

    @property
    def dashboard_url(self) -> str:
        """The dashboard in the CloudWatch console of the stack's region."""
        region = Aws.REGION
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#dashboards/dashboard/{self._names.dashboard}"
        )

    def _widgets(self) -> list[list[cw.IWidget]]:
        queues, functions, proxy = self._queues, self._functions, self._database.proxy
        processor = functions.processor

        def graph(title: str, left: Sequence[cw.IMetric], right: Sequence[cw.IMetric] = ()) -> cw.GraphWidget:
            return cw.GraphWidget(title=title, left=list(left), right=list(right), width=8, height=6)

        def latency(name: str) -> list[cw.IMetric]:
            return [app_metric(name, stat, label=f"{name} {stat}") for stat in ("p50", "p99", "Maximum")]

        proxy_metric = {"namespace": "AWS/RDS", "dimensions_map": {"ProxyName": proxy.db_proxy_name}}
        rejects_by_reason = cw.MathExpression(
            expression=(
                f'SEARCH(\'{{{METRICS_NAMESPACE},reason,service}} MetricName="SubmissionsRejectedByReason" '
                f"service=\"{SERVICE_NAME}\"', 'Sum', 300)"
            ),
            label="",
            period=FIVE_MINUTES,
        )
        insights = {"namespace": "LambdaInsights", "dimensions_map": {"function_name": processor.function_name}}
        return [
            [
                graph("Batch latency (ms)", latency("BatchLatency")),
                graph(
                    "Messages received vs acknowledged",
                    [app_metric(name) for name in ("MessagesReceived", "MessagesAcknowledged", "MessagesFailed")],
                    [app_metric("MessagesBackedOff"), app_metric("BackoffFailures")],
                ),
                graph("Events published", [app_metric("EventsPublished"), app_metric("SubmissionsCompleted")]),
            ],
            [
                graph(
                    "Rejects by reason",
                    [rejects_by_reason],
                    [app_metric(n) for n in ("SubmissionsRejected", "MessagesQuarantined", "QuarantineWriteFailures")],
                ),
                graph(
                    "Duplicates",
                    [
                        app_metric(n)
                        for n in ("DuplicatesSuppressed", "ConflictingDuplicates", "SubmissionsBusyElsewhere")
                    ],
                ),
                graph(
                    "Kinesis retries and throttling",
                    [
                        app_metric(n)
                        for n in (
                            "KinesisRecordsRetried",
                            "KinesisRecordsThrottled",
                            "PutRecordsCallsFailed",
                            "PutRecordsCallsBlocked",
                        )
                    ]
                    + [self._stream.metric_put_records_throttled_records(period=FIVE_MINUTES, statistic="Sum")],
                    [app_metric("PutRecordsCalls"), app_metric("SubmissionsGaveUp"), app_metric("DeadlineStops")],
                ),
            ],
            [
                graph("PutRecords latency (ms)", latency("PutRecordsLatency")),
                graph(
                    "Ledger statement latency (ms)",
                    [
                        app_metric(f"LedgerStatementLatency_{name}", stat, label=f"{name} {stat}")
                        for name in ("claim", "outcome")
                        for stat in ("p50", "p99")
                    ],
                    [app_metric("LedgerFailures"), app_metric("CircuitBreakerOpen", statistic="Maximum")],
                ),
                graph(
                    "Queue depth and oldest message (s)",
                    [
                        queues.queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE),
                        queues.queue.metric_approximate_number_of_messages_not_visible(period=ONE_MINUTE),
                    ],
                    [queues.queue.metric_approximate_age_of_oldest_message(period=ONE_MINUTE)],
                ),
            ],
            [
                graph(
                    "Dead-letter queue depth and oldest message (s)",
                    [queues.dead_letter_queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE)],
                    [queues.dead_letter_queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES)],
                ),
                graph(
                    "Processor duration (ms), errors, throttles",
                    [processor.metric_duration(statistic="p50"), processor.metric_duration(statistic="p99")],
                    [processor.metric_errors(), processor.metric_throttles()],
                ),
                graph(
                    "Processor concurrent executions",
                    [processor.metric("ConcurrentExecutions", statistic="Maximum", period=ONE_MINUTE)],
                ),
            ],
            [
                graph(
                    "RDS Proxy connections",
                    [
                        cw.Metric(metric_name=name, statistic="Maximum", period=ONE_MINUTE, **proxy_metric)  # type: ignore[arg-type]
                        for name in ("ClientConnections", "DatabaseConnections")
                    ],
                ),
                graph(
                    "Ledger database CPU (%) and free memory",
                    [self._database.instance.metric_cpu_utilization()],
                    [self._database.instance.metric_freeable_memory()],
                ),
                graph(
                    "Processor memory (%) and CPU time (ms), Lambda Insights",
                    [cw.Metric(metric_name="memory_utilization", statistic="Maximum", **insights)],  # type: ignore[arg-type]
                    [cw.Metric(metric_name="cpu_total_time", statistic="Average", **insights)],  # type: ignore[arg-type]
                ),
            ],
            [cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=4)],
        ]
