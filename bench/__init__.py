"""``make bench``: the handler beside the I/O floor and the Powertools idiom (targets: docs/benchmarks.md).

Everything runs in one process against a real PostgreSQL and Kinesis on moto, repeated and
interleaved, and reported as medians so that the ratios survive a noisy, shared machine.
"""
