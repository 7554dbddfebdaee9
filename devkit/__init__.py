"""Developer kit: tools shared by the tests, ``make run``, ``make bench`` and ``make chaos``.

Never deployed (the Lambda asset is ``functions/`` only). Holds the sensor fleet emulator, Lambda-shaped
SQS events and contexts, a stream reader, fault injection at the Kinesis boundary, the
PostgreSQL provisioning (the machine's server or an embedded one), and a loopback proxy in front of
PostgreSQL that delays, counts, records or cuts what crosses the wire.
"""
