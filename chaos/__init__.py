"""Fault injection for the processor: proves the delivery guarantees (docs/contract.md) under failure.

``python -m chaos`` (``make chaos``) drives many SQS-shaped batches through the real handler
(``processor.handler.handle_batch``) against a real PostgreSQL and Kinesis on a moto server, while
injecting faults at the boundaries only: the Kinesis client, the database server and the worker
process. Afterwards :mod:`chaos.invariants` reads the whole stream and the ledger and counts what went
wrong. Never deployed; lives beside ``devkit/``.
"""
