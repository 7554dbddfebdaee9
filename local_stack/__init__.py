"""The local main job (``make run``): the whole pipeline on loopback, or a worker.

Local mode: an embedded AWS endpoint (moto) with the ``submissions`` queue, its DLQ and the ``events``
stream; an embedded PostgreSQL unless ``DATABASE_URL`` is set; a sensor fleet; a poller driving the
real processor handler as the SQS event source mapping would; the health handler over HTTP; a stream
consumer checking order, ids and completeness; a live view; a summary. Worker mode (``--worker``):
only the poller, against the queue, stream and database the environment names.
"""
