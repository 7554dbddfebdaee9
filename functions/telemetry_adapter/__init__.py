"""Telemetry Adapter: validated, deduplicated, ordered delivery of EDR telemetry from SQS to Kinesis.

The package is shared by the Lambda handlers in ``functions/processor`` and ``functions/health``.
Modules are split by concern: decoding and validation (pure, no I/O), event records, the PostgreSQL
ledger, the Kinesis publisher, and the batch pipeline that ties them together.
"""
