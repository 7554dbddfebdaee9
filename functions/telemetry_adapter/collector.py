"""The cyclic garbage collector, paused for the length of one batch.

A batch allocates a few hundred thousand short-lived container objects (the SQS event, decoded
documents, submissions, records, publish jobs) that reference counting frees when the batch ends;
none of them form cycles. With the collector on, that allocation rate triggers about a hundred
collections per thousand messages, and the older generations' collections walk the whole heap
(every imported module, the boto3 client's service model, the batch itself) again and again:
measured by ``make bench``, 10 to 15 % of a 1,000-message batch, more for 10,000. Pausing it for
the batch removes that; cycles made meanwhile (rare: exceptions kept in a variable, some library
internals) are found by the first automatic collection after the batch.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Disable automatic cyclic collection inside the block; restore the previous state after it.

    Nesting and concurrent use are safe: only the outermost user that found it enabled re-enables it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
