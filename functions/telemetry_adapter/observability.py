"""Powertools Logger and Metrics shared by the handlers (structured JSON logs, CloudWatch EMF).

Defaults keep the functions working when the Powertools variables are unset (local runs, tests);
the deployed stack sets ``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_METRICS_NAMESPACE``.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "telemetry-adapter")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TelemetryAdapter")

logger = Logger(service=SERVICE, level=os.environ.get("LOG_LEVEL", "INFO"))
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
