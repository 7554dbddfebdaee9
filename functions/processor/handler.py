"""SQS-triggered Lambda: validate submissions, publish their events to Kinesis, report partial failures.

A thin handler: the batch is processed as a whole by :class:`~telemetry_adapter.pipeline.BatchPipeline`
(all I/O per batch) and concluded (the circuit breaker told, every failed message given its backoff
visibility, once the batch is fully decided), then Powertools' ``BatchProcessor`` turns the result
into the ``{"batchItemFailures": [...]}`` response the SQS event source expects
(``ReportBatchItemFailures``).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from telemetry_adapter.collector import collector_paused
from telemetry_adapter.deadline import Deadline
from telemetry_adapter.observability import inject_lambda_context, metrics, tracer
from telemetry_adapter.pipeline import BatchPipeline, BatchReport
from telemetry_adapter.reporting import emit_batch_metrics, log_batch_summary
from telemetry_adapter.runtime import default_pipeline


class MessageNotAcknowledged(Exception):
    """Raised for a message that must stay on the queue, so Powertools reports it as a failure."""


@inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point of the processor function."""
    return handle_batch(event, context, default_pipeline())


def handle_batch(event: dict[str, Any], context: Any, pipeline: BatchPipeline) -> dict[str, Any]:
    """Process an SQS event with ``pipeline``; return the partial batch response.

    The cyclic garbage collector is paused meanwhile (see :mod:`telemetry_adapter.collector`).
    """
    with collector_paused():
        return _handle_batch(event, context, pipeline)


def _handle_batch(event: dict[str, Any], context: Any, pipeline: BatchPipeline) -> dict[str, Any]:
    started = time.perf_counter()
    records = event.get("Records") or []
    if not records:
        return {"batchItemFailures": []}
    publish = pipeline.settings.publish
    deadline = Deadline.from_context(context, default_ms=publish.default_budget_ms, margin_ms=publish.safety_margin_ms)
    report = pipeline.process(records, deadline)
    pipeline.conclude(records, report, deadline)  # after every decision of ``process``: changes none
    seconds = time.perf_counter() - started
    emit_batch_metrics(report, seconds)
    log_batch_summary(report, seconds)
    failed = frozenset(report.failed_message_ids)

    def settle(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise MessageNotAcknowledged(record.message_id)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=settle, processor=processor, context=context)
    return dict(response)


__all__ = ["BatchReport", "handle_batch", "lambda_handler"]
