"""Turns a :class:`~telemetry_adapter.pipeline.BatchReport` into CloudWatch metrics (EMF, via Powertools)
and one summary log line per batch.

Metric names are part of the operations contract: the dashboard and alarms in ``infra/`` use them.
Rejections (and quarantined messages) go out one EMF document per reason, dimensioned by ``reason``,
so a broken or hostile sensor shows up as one reason's line rising.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from telemetry_adapter.circuit_breaker import BreakerState
from telemetry_adapter.observability import NAMESPACE, SERVICE, logger, metrics
from telemetry_adapter.pipeline import BatchReport
from telemetry_adapter.rejections import Reason

COUNT = MetricUnit.Count
MILLISECONDS = MetricUnit.Milliseconds


def emit_batch_metrics(report: BatchReport, batch_seconds: float) -> None:
    """Add the batch's metrics to the handler's EMF document (flushed by ``log_metrics``)."""
    publish = report.publish
    counts = {
        "MessagesReceived": report.received,
        "MessagesAcknowledged": report.acknowledged,
        "MessagesFailed": len(report.failed_message_ids),
        "SubmissionsRejected": sum(report.rejected.values()),
        "SubmissionsCompleted": report.submissions_completed,
        "DuplicatesSuppressed": report.duplicates_suppressed,
        "ConflictingDuplicates": report.rejected.get(Reason.CONFLICTING_DUPLICATE.value, 0),
        "SubmissionsBusyElsewhere": report.busy,
        "EventsPublished": report.events_published,
        "PutRecordsCalls": publish.calls,
        "PutRecordsCallsFailed": publish.calls_failed,
        "PutRecordsCallsBlocked": publish.calls_blocked,
        "KinesisRecordsRetried": publish.records_failed,
        "KinesisRecordsThrottled": publish.records_throttled,
        "SubmissionsGaveUp": publish.gave_up,
        "DeadlineStops": int(report.stopped_by_deadline),
        "LedgerFailures": int(report.ledger_failed),
        "DecoderErrors": report.decoder_errors,
        "LeasesLost": report.leases_lost,
        "MessagesHandedBack": report.handed_back,
        "MessagesBackedOff": report.backed_off,
        "BackoffFailures": report.backoff_failures,
        "CircuitBreakerOpen": int(report.breaker_state is not BreakerState.CLOSED),
        "MessagesQuarantined": sum(report.quarantined.values()),
        "QuarantineWriteFailures": int(report.quarantine_failed),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=COUNT, value=value)
    metrics.add_metric(name="BatchLatency", unit=MILLISECONDS, value=batch_seconds * 1000)
    for seconds in publish.call_seconds:
        metrics.add_metric(name="PutRecordsLatency", unit=MILLISECONDS, value=seconds * 1000)
    by_reason = {
        "SubmissionsRejectedByReason": report.rejected,
        "MessagesQuarantinedByReason": report.quarantined,
    }
    for name, counted in by_reason.items():
        for reason, value in sorted(counted.items()):
            with single_metric(
                name=name, unit=COUNT, value=value, namespace=NAMESPACE, default_dimensions={"service": SERVICE}
            ) as metric:
                metric.add_dimension(name="reason", value=reason)


def log_batch_summary(report: BatchReport, batch_seconds: float) -> None:
    """One INFO line per batch: the figures an operator reads first, without a line per message."""
    logger.info(
        "batch processed",
        extra={
            "received": report.received,
            "acknowledged": report.acknowledged,
            "failed": len(report.failed_message_ids),
            "rejected": dict(report.rejected),
            "quarantined": sum(report.quarantined.values()),
            "quarantine_failed": report.quarantine_failed,
            "duplicates_suppressed": report.duplicates_suppressed,
            "handed_back": report.handed_back,
            "busy_elsewhere": report.busy,
            "events_published": report.events_published,
            "putrecords_calls": report.publish.calls,
            "records_retried": report.publish.records_failed,
            "stopped_by_deadline": report.stopped_by_deadline,
            "ledger_failed": report.ledger_failed,
            "backed_off": report.backed_off,
            "circuit_breaker": report.breaker_state.value,
            "batch_ms": round(batch_seconds * 1000, 1),
        },
    )
