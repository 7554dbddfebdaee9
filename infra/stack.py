"""The one stack of a stage: queues, stream, database, functions, monitoring, wired together."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.database import LedgerDatabase
from infra.functions import Functions
from infra.ingest import IngestQueues
from infra.lifecycle import log_cdk_helpers
from infra.monitoring import Monitoring
from infra.naming import Names
from infra.operators import OperatorAccess
from infra.quarantine import QuarantineStorage
from infra.settings import DeploySettings
from infra.stream import EventStream


class TelemetryAdapterStack(Stack):
    """Everything the adapter needs in one account and region, for one stage."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any) -> None:
        names = Names(settings.stage)
        kwargs.setdefault("stack_name", names.stack)
        super().__init__(
            scope,
            construct_id,
            description=f"Telemetry Adapter ({settings.stage}): SQS to Kinesis for EDR telemetry",
            termination_protection=settings.termination_protection,
            **kwargs,
        )
        self.names = names
        self.queues = IngestQueues(self, "Ingest", settings=settings, names=names)
        self.stream = EventStream(self, "Events", settings=settings, names=names).stream
        self.quarantine = QuarantineStorage(self, "Quarantine", settings=settings, names=names)
        self.database = LedgerDatabase(self, "Ledger", settings=settings, names=names)
        self.database.scope_endpoints(
            stream_arn=self.stream.stream_arn,
            queue_arns=[self.queues.queue.queue_arn, self.queues.dead_letter_queue.queue_arn],
            quarantine_objects_arn=self.quarantine.rejected_objects_arn,
        )
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            names=names,
            queues=self.queues,
            stream=self.stream,
            database=self.database,
            quarantine=self.quarantine,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            names=names,
            queues=self.queues,
            stream=self.stream,
            database=self.database,
            functions=self.functions,
        )
        self.operators = OperatorAccess(
            self, "Operators", queues=self.queues, quarantine=self.quarantine, health=self.functions.health
        )
        outputs = {
            "Stage": settings.stage,
            "QueueUrl": self.queues.queue.queue_url,
            "DeadLetterQueueUrl": self.queues.dead_letter_queue.queue_url,
            "StreamName": self.stream.stream_name,
            "HealthUrl": self.functions.health_url.url,
            "HealthFunctionName": self.functions.health.function_name,
            "ProcessorFunctionName": self.functions.processor.function_name,
            "QuarantineBucketName": self.quarantine.bucket.bucket_name,
            "OperatorPolicyArn": self.operators.policy.managed_policy_arn,
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
            "DashboardName": self.monitoring.dashboard.dashboard_name,
            "DashboardUrl": self.monitoring.dashboard_url,
        }
        for role, log_group in self.functions.log_groups.items():
            outputs[f"{role.capitalize()}LogGroup"] = log_group.log_group_name
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
        log_cdk_helpers(self, settings, names)  # last: CDK adds its helper providers as constructs are built
