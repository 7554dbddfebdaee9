"""The Lambda functions: processor (SQS event source), health (Function URL), migration, clean-up.

All four run the same code asset (``infra/bundling.py``) on Python 3.12, arm64 (about 20% cheaper per
GB-second than x86_64; the dependencies are pure Python), inside the VPC's isolated subnets. Each has
a stage-derived name and its log group is ``/aws/lambda/<name>``, where people look for it.

Order on every deploy: the migration custom resource runs whenever the code asset changes, and the
processor, the health function, the clean-up and the event source mapping depend on it, so code never
meets an older schema than it was written for.

Least privilege, per function:

* processor: ``kinesis:PutRecord(s)`` on the one stream, ``rds-db:connect`` as the app user, the SQS
  consume actions the event source mapping needs on the one queue, ``sqs:SendMessage`` plus
  ``sqs:ChangeMessageVisibility`` on that queue only (a big submission making progress is handed back
  as a fresh message; a failed message gets a backoff visibility), and ``s3:PutObject`` on the
  quarantine's ``rejected/*`` keys only (``QUARANTINE_BUCKET``). No ``*`` resource in its own
  policies (X-Ray and VPC networking come from AWS-managed policies, since those actions have no
  resource-level permissions).
* health: read-only checks (queue attributes, stream summary, metric data, ``rds-db:connect`` as the
  read-only ledger user ``telemetry_health``, since its URL may be public). Invoked
  directly (``lambda:InvokeFunction``, which IAM authorises for the operators), it also answers the
  operators' tool: the health answer, and what the ledger knows of one submission, read-only.
* migration: ``rds-db:connect`` as the admin and read access to the app user's and the health user's
  secrets (it sets their passwords).
* clean-up: ``rds-db:connect`` as the app user.
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME, asset_hash, lambda_code
from infra.database import ADMIN_USER, APP_USER, DATABASE_NAME, HEALTH_USER, ISOLATED, PORT, LedgerDatabase
from infra.ingest import IngestQueues, encrypted_queue
from infra.lifecycle import kept_unless_dev
from infra.nag import acknowledge, logical_id
from infra.naming import Names
from infra.quarantine import QuarantineStorage
from infra.settings import DLQ_RETENTION_DAYS, DeploySettings
from telemetry_adapter.ledger.migrations import available_migrations

SERVICE_NAME = "telemetry-adapter"
METRICS_NAMESPACE = "TelemetryAdapter"
INSIGHTS = lambda_.LambdaInsightsVersion.VERSION_1_0_498_0
MIGRATION_TIMEOUT = Duration.minutes(10)
PUBLIC_HEALTH_CONCURRENCY = 2
"""Reserved concurrency of a health function whose URL needs no auth: a flood costs two environments."""

_MANAGED_POLICY_REASON = (
    "Risk accepted: an AWS-managed policy we do not version (logging, VPC network interfaces, X-Ray or "
    "Lambda Insights). Its actions have no resource-level permissions, so a policy of our own would be no "
    "narrower."
)
_BASIC_POLICY = "service-role/AWSLambdaBasicExecutionRole"
_BASE_POLICIES = (_BASIC_POLICY, "service-role/AWSLambdaVPCAccessExecutionRole")
_XRAY_POLICY = "AWSXRayDaemonWriteAccess"
_INSIGHTS_POLICY = "CloudWatchLambdaInsightsExecutionRolePolicy"


def _acknowledge_managed_policies(scope: Construct, names: tuple[str, ...]) -> None:
    for name in names:
        acknowledge(
            scope, (f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{name}]", _MANAGED_POLICY_REASON)
        )


def schema_version() -> int:
    """The newest migration the asset ships: a rollback to older code asks for a lower one."""
    return max(migration.version for migration in available_migrations())


class Functions(Construct):
    """``processor``, ``health`` (with ``health_url``), ``migration`` (custom resource), ``cleanup``.

    ``log_groups`` holds each function's log group by function role (processor, health, migration,
    cleanup), for the stack outputs.
    """

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
        quarantine: QuarantineStorage,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._names = names
        self._database = database
        self._code = lambda_code()
        self.log_groups: dict[str, logs.LogGroup] = {}
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
        self.migration = self._migration()

        self.processor = self._function(
            "processor",
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
                "QUEUE_URL": queues.queue.queue_url,
                "QUARANTINE_BUCKET": quarantine.bucket.bucket_name,
                "TIME_BUDGET_MARGIN_MS": str(settings.time_budget_margin_ms),
                "LEDGER_STATEMENT_TIMEOUT_MS": str(settings.ledger_statement_timeout_ms),
                "LEDGER_RETENTION_DAYS": str(settings.ledger_retention_days),
                "RETRY_BASE_DELAY_SECONDS": str(settings.retry_base_delay_seconds),
                "RETRY_MAX_DELAY_SECONDS": str(settings.retry_max_delay_seconds),
            },
        )
        self.processor.add_to_role_policy(
            iam.PolicyStatement(actions=["kinesis:PutRecord", "kinesis:PutRecords"], resources=[stream.stream_arn])
        )
        database.grant_connect(self.processor, APP_USER)
        quarantine.grant_write_rejected(self.processor)
        acknowledge(
            self.processor,
            (
                f"AwsSolutions-IAM5[Resource::<{logical_id(quarantine.bucket)}.Arn>/rejected/*]",
                "Risk accepted: the processor may create objects anywhere under rejected/ in the quarantine "
                "bucket; it names each object itself (one per batch), so no narrower resource exists. It may "
                "not read, list or delete anything.",
            ),
        )
        queues.queue.grant_consume_messages(self.processor)
        # Hand a message back to its own queue: a fresh copy for a big submission making progress, a
        # backoff visibility for a failed one.
        self.processor.add_to_role_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage", "sqs:ChangeMessageVisibility"], resources=[queues.queue.queue_arn]
            )
        )

        self.health = self._function(
            "health",
            handler="health.handler.lambda_handler",
            description="Health check: ledger, stream, queues, processor heartbeat",
            timeout=Duration.seconds(settings.health_timeout_seconds),
            memory_mb=256,
            logical_id="HealthFunction",
            reserved_concurrency=PUBLIC_HEALTH_CONCURRENCY if settings.health_url_auth == "NONE" else None,
            environment={
                **common_env,
                **database_env,
                "DB_USER": HEALTH_USER,  # read-only: its URL may be public
                **local_overrides,
                "STREAM_NAME": stream.stream_name,
                "QUEUE_URL": queues.queue.queue_url,
                "DLQ_URL": queues.dead_letter_queue.queue_url,
                "HEARTBEAT_MAX_AGE_SECONDS": str(settings.heartbeat_max_age_seconds),
                "HEALTH_CHECK_TIMEOUT_MS": str(settings.health_check_timeout_ms),
                "HEALTH_URL_AUTH": settings.health_url_auth,
            },
        )
        self._grant_health_checks(queues, stream)
        self.health_url = self.health.add_function_url(auth_type=lambda_.FunctionUrlAuthType[settings.health_url_auth])

        self.cleanup_dead_letter_queue, self.cleanup = self._cleanup(common_env, database_env)

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
        # Every function that reads or writes the ledger, and the mapping, wait for the migration, so an
        # update migrates first. The role's policy (SQS consume) must exist before the mapping too, which
        # AWS validates on creation.
        for dependent in (self.processor, self.health, self.cleanup):
            dependent.node.add_dependency(self.migration)
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
        reserved_concurrency: int | None = None,
    ) -> lambda_.Function:
        """A function of the shared asset in the VPC, with its stage-derived name and log group."""
        settings, names = self._settings, self._names
        log_group = logs.LogGroup(
            self,
            f"{name.capitalize()}Logs",
            log_group_name=names.function_log_group(name),
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=kept_unless_dev(settings),
        )
        self.log_groups[name] = log_group
        function = lambda_.Function(
            self,
            name.capitalize(),
            function_name=names.resource(name),
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
            application_log_level_v2=lambda_.ApplicationLogLevel[settings.application_log_filter],
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            insights_version=INSIGHTS if insights else None,
            reserved_concurrent_executions=reserved_concurrency,
        )
        cfn = function.node.default_child
        if not isinstance(cfn, lambda_.CfnFunction):
            raise AssertionError("unexpected Lambda L1 resource")
        if logical_id:  # a stable name for `sam local invoke` and the docs
            cfn.override_logical_id(logical_id)
        policies = _BASE_POLICIES + ((_INSIGHTS_POLICY,) if insights else ())
        if settings.tracing:
            # Active tracing through the L1 property plus the AWS-managed X-Ray policy: the L2 switch
            # would add an inline xray:* statement on "*" to the function's own policy.
            cfn.tracing_config = lambda_.CfnFunction.TracingConfigProperty(mode="Active")
            function.role.add_managed_policy(  # type: ignore[union-attr]
                iam.ManagedPolicy.from_aws_managed_policy_name(_XRAY_POLICY)
            )
            policies += (_XRAY_POLICY,)
        _acknowledge_managed_policies(function, policies)
        acknowledge(
            function,
            (
                "AwsSolutions-L1",
                "Risk accepted: not the newest Python runtime. 3.12 is the one the code, its bytecode and its "
                "locked dependencies are built and tested for; move together with infra/bundling.py.",
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
        self._database.grant_connect(health, HEALTH_USER)
        acknowledge(
            health,
            (
                "AwsSolutions-IAM5[Resource::*]",
                "Risk accepted: the health function may read any metric of the account. GetMetricData has no "
                "resource-level permissions; it reads the queue's oldest-message age with it, read-only.",
            ),
        )

    def _migration(self) -> CustomResource:
        """The migration custom resource: runs on create and whenever the code asset changes.

        ``AssetHash``, ``SchemaVersion`` and the users and secrets in the request let the function answer
        a rollback or a code-only change without touching the database (``functions/migrate/handler.py``).
        """
        database = self._database
        function = self._function(
            "migration",
            handler="migrate.handler.on_event",
            description="Applies the ledger's SQL migrations and sets up its database users",
            timeout=MIGRATION_TIMEOUT,
            memory_mb=256,
            environment={
                "DB_HOST": database.proxy.endpoint,
                "DB_PORT": str(PORT),
                "DB_NAME": DATABASE_NAME,
                "DB_USER": ADMIN_USER,
                "APP_DB_USER": APP_USER,
                "APP_SECRET_ARN": database.app_secret.secret_arn,
                "HEALTH_DB_USER": HEALTH_USER,
                "HEALTH_SECRET_ARN": database.health_secret.secret_arn,
                "ASSET_HASH": asset_hash(),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "LOG_LEVEL": self._settings.log_level,
            },
        )
        database.grant_connect(function, ADMIN_USER)
        database.app_secret.grant_read(function)
        database.health_secret.grant_read(function)
        provider = cr.Provider(
            self,
            "MigrationProvider",
            on_event_handler=function,
            log_group=logs.LogGroup(
                self,
                "MigrationProviderLogs",
                log_group_name=self._names.log_group("migration-provider"),
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=kept_unless_dev(self._settings),
            ),
        )
        _acknowledge_managed_policies(provider, (_BASIC_POLICY,))  # its function is outside the VPC
        acknowledge(
            provider,
            (
                f"AwsSolutions-IAM5[Resource::<{logical_id(function)}.Arn>:*]",
                "Risk accepted: the CDK Provider framework may invoke any version of the migration function "
                "(CDK writes the grant that way); it can invoke no other function.",
            ),
            (
                "AwsSolutions-L1",
                "Risk accepted: the Provider framework's own function runs the Node.js runtime CDK chooses; "
                "it is updated with aws-cdk-lib.",
            ),
        )
        resource = CustomResource(
            self,
            "LedgerMigrations",
            service_token=provider.service_token,
            resource_type="Custom::LedgerMigrations",
            properties={
                "AssetHash": asset_hash(),
                "SchemaVersion": schema_version(),
                "AppUser": APP_USER,
                "AppSecretArn": database.app_secret.secret_arn,
                "HealthUser": HEALTH_USER,
                "HealthSecretArn": database.health_secret.secret_arn,
            },
        )
        resource.node.add_dependency(database.instance, database.proxy)
        return resource

    def _cleanup(self, common_env: dict[str, str], database_env: dict[str, str]) -> tuple[sqs.Queue, lambda_.Function]:
        """Daily deletion of ledger rows older than the retention window; failed deliveries kept in a DLQ."""
        names = self._names
        function = self._function(
            "cleanup",
            handler="cleanup.handler.lambda_handler",
            description="Deletes ledger rows older than LEDGER_RETENTION_DAYS",
            timeout=Duration.minutes(5),
            memory_mb=256,
            environment={
                **common_env,
                **database_env,
                "LEDGER_RETENTION_DAYS": str(self._settings.ledger_retention_days),
                # A chunk may take longer than a processor statement; never shorter, so it stays above the
                # proxy's borrow timeout (which is below the processor's statement timeout).
                "CLEANUP_STATEMENT_TIMEOUT_MS": str(max(10_000, self._settings.ledger_statement_timeout_ms)),
            },
        )
        self._database.grant_connect(function, APP_USER)
        undelivered = encrypted_queue(
            self,
            "CleanupDeadLetterQueue",
            name=names.resource("cleanup-dlq"),
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
        )
        acknowledge(
            undelivered,
            ("AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the clean-up schedule's target."),
        )
        events.Rule(
            self,
            "DailyCleanup",
            rule_name=names.resource("daily-cleanup"),
            description="Ledger retention clean-up, daily at 03:17 UTC",
            schedule=events.Schedule.cron(minute="17", hour="3"),
            targets=[
                targets.LambdaFunction(
                    function, retry_attempts=2, max_event_age=Duration.hours(6), dead_letter_queue=undelivered
                )
            ],
        )
        return undelivered, function
