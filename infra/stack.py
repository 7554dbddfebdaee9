"""The one stack: queues, stream, database, functions, monitoring, wired together."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.database import LedgerDatabase
from infra.functions import Functions
from infra.ingest import IngestQueues
from infra.monitoring import Monitoring
from infra.settings import DeploySettings
from infra.stream import EventStream

STACK_NAME = "TelemetryAdapter"


class TelemetryAdapterStack(Stack):
    """Everything the adapter needs in one account and region."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: Any) -> None:
        super().__init__(
            scope, construct_id, description="Telemetry Adapter: SQS to Kinesis for EDR telemetry", **kwargs
        )
        self.queues = IngestQueues(self, "Ingest", settings=settings)
        self.stream = EventStream(self, "Events", settings=settings).stream
        self.database = LedgerDatabase(self, "Ledger", settings=settings)
        self.functions = Functions(
            self, "Functions", settings=settings, queues=self.queues, stream=self.stream, database=self.database
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            queues=self.queues,
            stream=self.stream,
            database=self.database,
            functions=self.functions,
        )
        outputs = {
            "QueueUrl": self.queues.queue.queue_url,
            "DeadLetterQueueUrl": self.queues.dead_letter_queue.queue_url,
            "StreamName": self.stream.stream_name,
            "HealthUrl": self.functions.health_url.url,
            "ProcessorFunctionName": self.functions.processor.function_name,
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
            "DashboardName": self.monitoring.dashboard.dashboard_name,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
