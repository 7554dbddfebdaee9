"""The operators' tool: ``python -m ops`` (``make ops ARGS='...'``).

For the person paged: the dead-letter queue (``dlq peek``, ``dlq redrive``), the quarantine of rejected
messages (``quarantine list``, ``show``, ``replay``) and what the ledger knows of one submission
(``submission <id>``), against a deployed stack (``--stack NAME``: AWS credentials and the stack's name
are all it needs), a running ``make run`` (``--local``), or endpoints named one by one.
"""
