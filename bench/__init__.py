"""``make bench``: the handler measured side by side with the I/O floor and a naive design (SPEC 10).

Everything runs in one process against a real PostgreSQL and Kinesis on moto, repeated and
interleaved, and reported as medians so that the ratios survive a noisy, shared machine.
"""
