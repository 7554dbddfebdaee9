"""Why Lambda's application log filter never goes above INFO: what Powertools writes, and what it obeys.

Lambda's log-level filter (``LoggingConfig.ApplicationLogLevel``, JSON log format) gives a line without
a ``level`` key the level INFO. These tests hold the pinned Powertools to the two facts the stack's
rule rests on (``infra/settings.py``, ``logLevel``): its EMF metric documents carry no ``level``, so
a WARN filter would drop every custom metric and the alarms on them could never fire; and its Logger
follows the level Lambda's filter sets (``AWS_LAMBDA_LOG_LEVEL``) over ``LOG_LEVEL``, so a quieter
``LOG_LEVEL`` under an INFO filter changes nothing. Should either fact change, these fail and the
rule can be revisited.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from contextlib import redirect_stdout

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit


def test_metric_documents_carry_no_level_for_lambdas_filter() -> None:
    metrics = Metrics(namespace="TelemetryAdapter", service="telemetry-adapter")
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=1)
    output = io.StringIO()
    with redirect_stdout(output):
        metrics.flush_metrics()
    (line,) = output.getvalue().splitlines()
    document = json.loads(line)
    assert "_aws" in document  # an EMF document, printed as one JSON line
    assert "level" not in document  # so Lambda files it as INFO, below a WARN or ERROR filter


def test_the_logger_follows_lambdas_filter_level_over_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "INFO")
    logger = Logger(service=f"log-level-probe-{uuid.uuid4().hex[:8]}")
    assert logger.log_level == logging.INFO
