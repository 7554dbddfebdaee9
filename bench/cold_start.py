"""Cold start: importing the processor handler module in a fresh interpreter, against ``import boto3``.

Each sample is a new interpreter (``python -c``) timing its own import with ``perf_counter``, so
interpreter start-up, common to both, is left out. Samples alternate between the two so that a busy
neighbour slows both alike; bytecode caches are warmed first, as in a deployed package.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
_PROGRAM = "import time; s = time.perf_counter(); import {module}; print(time.perf_counter() - s)"
HANDLER_MODULE = "processor.handler"
BASELINE_MODULE = "boto3"


@dataclass(frozen=True)
class ColdStartResult:
    """Median import seconds of the handler module and of boto3 alone."""

    handler_s: float
    boto3_s: float

    @property
    def ratio(self) -> float:
        """Handler import time over boto3 import time."""
        return self.handler_s / self.boto3_s


def import_seconds(module: str) -> float:
    """Seconds a fresh interpreter takes to import ``module``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(_REPO / "functions"), str(_REPO)]),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    output = subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(module=module)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    ).stdout
    return float(output.strip().splitlines()[-1])


def measure_cold_start(repeats: int) -> ColdStartResult:
    """Median of ``repeats`` alternating samples of each import."""
    import_seconds(HANDLER_MODULE)  # compile bytecode once
    handler: list[float] = []
    baseline: list[float] = []
    for _ in range(repeats):
        handler.append(import_seconds(HANDLER_MODULE))
        baseline.append(import_seconds(BASELINE_MODULE))
    return ColdStartResult(statistics.median(handler), statistics.median(baseline))
