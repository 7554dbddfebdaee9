"""The processor as Lambda runs it, with a pipeline the local stack can observe and fault-inject.

The pipeline is built from the same pieces and the same environment as
:func:`telemetry_adapter.runtime.default_pipeline`, with two differences at the boundaries: the Kinesis
client may be wrapped in :class:`devkit.kinesis.FlakyKinesis` (record failures like a throttled
stream), and :class:`RecordingPipeline` adds every :class:`BatchReport` to the run's tally. The
handler is :func:`processor.handler.handle_batch` under the same Powertools decorators as
``lambda_handler`` (context in the logs, EMF metrics flushed per invocation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from devkit.kinesis import FlakyKinesis
from local_stack.tally import Tally
from processor.handler import handle_batch
from telemetry_adapter.config import Settings
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.ledger.repository import Ledger
from telemetry_adapter.observability import inject_lambda_context, metrics
from telemetry_adapter.pipeline import BatchPipeline, BatchReport
from telemetry_adapter.publisher import KinesisClient, OrderedPublisher
from telemetry_adapter.runtime import kinesis_client, ledger_from_env

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class RecordingPipeline(BatchPipeline):
    """A :class:`BatchPipeline` that adds each batch's report to a tally."""

    def __init__(self, settings: Settings, ledger: Ledger, publisher: OrderedPublisher, tally: Tally) -> None:
        super().__init__(settings, ledger, publisher)
        self._tally = tally

    def process(self, records: Sequence[Mapping[str, Any]], deadline: Deadline) -> BatchReport:
        """Process the batch, then record what happened."""
        report = super().process(records, deadline)
        self._tally.add_report(report)
        return report


def build_pipeline(tally: Tally, *, kinesis_error_rate: float = 0.0, seed: int = 1) -> RecordingPipeline:
    """The processor's pipeline from the environment, optionally with Kinesis record failures."""
    settings = Settings.from_env(check_time_budget=False)  # runs short invocations on purpose
    ledger = ledger_from_env()
    client: KinesisClient = kinesis_client()
    if kinesis_error_rate > 0:
        client = FlakyKinesis(client, record_failure_rate=kinesis_error_rate, seed=seed)
    publisher = OrderedPublisher(client, settings.stream_name, settings.publish)
    return RecordingPipeline(settings, ledger, publisher, tally)


def lambda_style_handler(pipeline: BatchPipeline) -> Handler:
    """``lambda_handler``'s decorators around ``handle_batch`` with the given pipeline."""

    @inject_lambda_context
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_batch(event, context, pipeline)

    return handler
