"""The Lambda functions: processor (SQS event source), health (Function URL), migration, clean-up.

All four run the same code asset (``infra/bundling.py``) on Python 3.12, arm64 (about 20% cheaper per
GB-second than x86_64; the dependencies are pure Python), inside the VPC's isolated subnets.

Least privilege, per function:

* processor: ``kinesis:PutRecord(s)`` on the one stream, ``rds-db:connect`` as the app user, and the
  SQS consume actions the event source mapping needs on the one queue. No ``*`` resource in its own
  policies (X-Ray and VPC networking come from AWS-managed policies, since those actions have no
  resource-level permissions).
* health: read-only checks (queue attributes, stream summary, metric data, ``rds-db:connect``).
* migration: ``rds-db:connect`` as the admin and read access to the app user's secret.
* clean-up: ``rds-db:connect`` as the app user.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME, asset_hash, lambda_code
from infra.database import ADMIN_USER, APP_USER, DATABASE_NAME, ISOLATED, PORT, LedgerDatabase
from infra.ingest import IngestQueues
from infra.nag import acknowledge
from infra.settings import DeploySettings

SERVICE_NAME = "telemetry-adapter"
METRICS_NAMESPACE = "TelemetryAdapter"
INSIGHTS = lambda_.LambdaInsightsVersion.VERSION_1_0_498_0

_MANAGED_POLICY_REASON = (
    "AWS-managed Lambda policy (logging, VPC network interfaces, X-Ray or Lambda Insights): its actions have "
    "no resource-level permissions, so a policy of our own would be no narrower."
)
_MANAGED_POLICIES = (
    "service-role/AWSLambdaBasicExecutionRole",
    "service-role/AWSLambdaVPCAccessExecutionRole",
    "AWSXRayDaemonWriteAccess",
    "CloudWatchLambdaInsightsExecutionRolePolicy",
)


def _acknowledge_managed_policies(scope: Construct, names: tuple[str, ...] = _MANAGED_POLICIES) -> None:
    for name in names:
        acknowledge(
            scope, (f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{name}]", _MANAGED_POLICY_REASON)
        )


def _logical_id(function: lambda_.Function) -> str:
    """The CloudFormation logical id of a function (cdk-nag names findings by it)."""
    stack = Stack.of(function)
    return str(stack.resolve(stack.get_logical_id(function.node.default_child)))  # type: ignore[arg-type]


class Functions(Construct):
    """``processor``, ``health`` (with ``health_url``), ``migration`` (custom resource), ``cleanup``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        queues: IngestQueues,
        stream: kinesis.Stream,
        database: LedgerDatabase,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._database = database
        self._code = lambda_code()
        proxy = database.proxy.endpoint
        database_env = {"DB_HOST": proxy, "DB_PORT": str(PORT), "DB_NAME": DATABASE_NAME, "DB_USER": APP_USER}
        # Declared empty so `sam local invoke --env-vars events/env.json` may set them (SAM only
        # overrides variables the template declares); empty means unset to boto3 and to the ledger.
        local_overrides = {"DATABASE_URL": "", "AWS_ENDPOINT_URL": ""}
        common_env = {
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_TRACE_DISABLED": str(not settings.tracing).lower(),
            "LOG_LEVEL": settings.log_level,
        }

        self.processor = self._function(
            "Processor",
            handler="processor.handler.lambda_handler",
            description="SQS submissions to ordered, deduplicated Kinesis events",
            timeout=Duration.seconds(settings.function_timeout_seconds),
            memory_mb=settings.function_memory_mb,
            insights=settings.lambda_insights,
            logical_id="ProcessorFunction",
            environment={
                **common_env,
                **database_env,
                **local_overrides,
                "STREAM_NAME": stream.stream_name,
                "TIME_BUDGET_MARGIN_MS": str(settings.time_budget_margin_ms),
                "LEDGER_RETENTION_DAYS": str(settings.ledger_retention_days),
            },
        )
        self.processor.add_to_role_policy(
            iam.PolicyStatement(actions=["kinesis:PutRecord", "kinesis:PutRecords"], resources=[stream.stream_arn])
        )
        database.grant_connect(self.processor, APP_USER)

        self.health = self._function(
            "Health",
            handler="health.handler.lambda_handler",
            description="Health check: ledger, stream, queues, processor heartbeat",
            timeout=Duration.seconds(10),
            memory_mb=256,
            logical_id="HealthFunction",
            environment={
                **common_env,
                **database_env,
                **local_overrides,
                "STREAM_NAME": stream.stream_name,
                "QUEUE_URL": queues.queue.queue_url,
                "DLQ_URL": queues.dead_letter_queue.queue_url,
                "HEARTBEAT_MAX_AGE_SECONDS": str(settings.heartbeat_max_age_seconds),
                "HEALTH_CHECK_TIMEOUT_MS": str(settings.health_check_timeout_ms),
            },
        )
        self._grant_health_checks(queues, stream)
        self.health_url = self.health.add_function_url(auth_type=lambda_.FunctionUrlAuthType[settings.health_url_auth])

        self.migration = self._migration()
        self.cleanup = self._cleanup(common_env, database_env)

        # The event source mapping is created only after the migration custom resource succeeded,
        # so the processor never receives traffic before its tables and database user exist.
        self.event_source = lambda_.EventSourceMapping(
            self,
            "SubmissionsSource",
            target=self.processor,
            event_source_arn=queues.queue.queue_arn,
            batch_size=settings.batch_size,
            max_batching_window=Duration.seconds(settings.max_batching_window_seconds),
            max_concurrency=settings.max_concurrency,
            report_batch_item_failures=True,
        )
        queues.queue.grant_consume_messages(self.processor)
        # The role's policy (SQS consume) must exist before the mapping, which AWS validates on creation.
        self.event_source.node.add_dependency(self.migration, self.processor.role)

    def _function(
        self,
        name: str,
        *,
        handler: str,
        description: str,
        timeout: Duration,
        memory_mb: int,
        environment: dict[str, str],
        insights: bool = False,
        logical_id: str | None = None,
    ) -> lambda_.Function:
        """A function of the shared asset in the VPC, with its own log group (retention set)."""
        log_group = logs.LogGroup(
            self, f"{name}Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        function = lambda_.Function(
            self,
            name,
            code=self._code,
            handler=handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            description=description,
            timeout=timeout,
            memory_size=memory_mb,
            environment=environment,
            vpc=self._database.vpc,
            vpc_subnets=ISOLATED,
            security_groups=[self._database.function_security_group],
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            insights_version=INSIGHTS if insights else None,
        )
        cfn = function.node.default_child
        if not isinstance(cfn, lambda_.CfnFunction):
            raise AssertionError("unexpected Lambda L1 resource")
        if logical_id:  # a stable name for `sam local invoke` and the docs
            cfn.override_logical_id(logical_id)
        if self._settings.tracing:
            # Active tracing through the L1 property plus the AWS-managed X-Ray policy: the L2 switch
            # would add an inline xray:* statement on "*" to the function's own policy.
            cfn.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
            function.role.add_managed_policy(  # type: ignore[union-attr]
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSXRayDaemonWriteAccess")
            )
        _acknowledge_managed_policies(function)
        acknowledge(
            function,
            (
                "AwsSolutions-L1",
                "Python 3.12 is the runtime the code is tested for; move to a newer one together with "
                "PYTHON_VERSION in infra/bundling.py after testing on it.",
            ),
        )
        return function

    def _grant_health_checks(self, queues: IngestQueues, stream: kinesis.Stream) -> None:
        health = self.health
        health.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sqs:GetQueueAttributes"],
                resources=[queues.queue.queue_arn, queues.dead_letter_queue.queue_arn],
            )
        )
        health.add_to_role_policy(
            iam.PolicyStatement(actions=["kinesis:DescribeStreamSummary"], resources=[stream.stream_arn])
        )
        health.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))
        self._database.grant_connect(health, APP_USER)
        acknowledge(
            health,
            (
                "AwsSolutions-IAM5[Resource::*]",
                "cloudwatch:GetMetricData has no resource-level permissions; the health check reads the "
                "queue's ApproximateAgeOfOldestMessage with it, read-only.",
            ),
        )

    def _migration(self) -> CustomResource:
        """The migration custom resource: runs on create and whenever the code asset changes."""
        database = self._database
        function = self._function(
            "Migration",
            handler="migrate.handler.on_event",
            description="Applies the ledger's SQL migrations and sets up the app database user",
            timeout=Duration.minutes(5),
            memory_mb=256,
            environment={
                "DB_HOST": database.proxy.endpoint,
                "DB_PORT": str(PORT),
                "DB_NAME": DATABASE_NAME,
                "DB_USER": ADMIN_USER,
                "APP_DB_USER": APP_USER,
                "APP_SECRET_ARN": database.app_secret.secret_arn,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "LOG_LEVEL": self._settings.log_level,
            },
        )
        database.grant_connect(function, ADMIN_USER)
        database.app_secret.grant_read(function)
        provider = cr.Provider(
            self,
            "MigrationProvider",
            on_event_handler=function,
            log_group=logs.LogGroup(
                self,
                "MigrationProviderLogs",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=RemovalPolicy.DESTROY,
            ),
        )
        _acknowledge_managed_policies(provider)
        acknowledge(
            provider,
            (
                f"AwsSolutions-IAM5[Resource::<{_logical_id(function)}.Arn>:*]",
                "The CDK Provider framework may invoke any version of the migration function; no other function.",
            ),
            ("AwsSolutions-L1", "The Provider framework's own function: CDK chooses and updates its runtime."),
        )
        resource = CustomResource(
            self,
            "LedgerMigrations",
            service_token=provider.service_token,
            resource_type="Custom::LedgerMigrations",
            properties={"AssetHash": asset_hash(), "AppUser": APP_USER, "AppSecretArn": database.app_secret.secret_arn},
        )
        resource.node.add_dependency(database.instance, database.proxy)
        return resource

    def _cleanup(self, common_env: dict[str, str], database_env: dict[str, str]) -> lambda_.Function:
        """Daily deletion of ledger rows older than the retention window."""
        function = self._function(
            "Cleanup",
            handler="cleanup.handler.lambda_handler",
            description="Deletes ledger rows older than LEDGER_RETENTION_DAYS",
            timeout=Duration.minutes(5),
            memory_mb=256,
            environment={
                **common_env,
                **database_env,
                "LEDGER_RETENTION_DAYS": str(self._settings.ledger_retention_days),
            },
        )
        self._database.grant_connect(function, APP_USER)
        function.node.add_dependency(self.migration)
        events.Rule(
            self,
            "DailyCleanup",
            description="Ledger retention clean-up, daily at 03:17 UTC",
            schedule=events.Schedule.cron(minute="17", hour="3"),
            targets=[targets.LambdaFunction(function, retry_attempts=2)],
        )
        return function
