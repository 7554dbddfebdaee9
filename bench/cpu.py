"""CPU per valid submission: our decode, validate and build, against the bare minimum of the same work.

The bare minimum is what any adapter must do with the data at least once: base64-decode the body,
parse the JSON, and serialise each event again. Ours adds UTF-8 and size checks, validation,
normalisation, the content digest, deterministic event ids and the record envelope.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from dataclasses import dataclass

from bench.workload import make_batch
from telemetry_adapter.config import Limits
from telemetry_adapter.records import build_records, processing_timestamp
from telemetry_adapter.submission import parse_submission

_CHUNK = 100


@dataclass(frozen=True)
class CpuResult:
    """Median microseconds per submission, ours and bare."""

    ours_us: float
    bare_us: float

    @property
    def ratio(self) -> float:
        """How many times the bare cost ours is."""
        return self.ours_us / self.bare_us


def _ours(bodies: list[str]) -> None:
    limits = Limits()
    timestamp = processing_timestamp()
    for body in bodies:
        build_records(parse_submission(body, limits), 0, timestamp)


def _bare(bodies: list[str]) -> None:
    for body in bodies:
        document = json.loads(base64.b64decode(body))
        for items in document["events"].values():
            for item in items:
                json.dumps(item)


def measure_cpu(submissions: int, repeats: int) -> CpuResult:
    """Both variants over the same ``submissions`` bodies, interleaved chunk by chunk; medians.

    CPU time (``process_time``), not wall time: this case is pure computation, and on a shared
    machine wall time mostly measures the neighbours. Each sample is one chunk of ``_CHUNK`` bodies,
    the two variants alternating, so both see the same cache and frequency conditions.
    """
    bodies = make_batch(submissions, seed=424_242).bodies
    _ours(bodies)  # warm caches (the IP cache a fleet fills in its first minutes)
    chunks = [bodies[i : i + _CHUNK] for i in range(0, len(bodies), _CHUNK)]
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(repeats):
        for chunk in chunks:
            for variant, samples in ((_ours, ours), (_bare, bare)):
                started = time.process_time()
                variant(chunk)
                samples.append((time.process_time() - started) / len(chunk) * 1e6)
    return CpuResult(statistics.median(ours), statistics.median(bare))
