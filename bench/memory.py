"""Peak memory of the handler on one large batch, measured in a process of its own.

``measure_memory`` starts a moto server on loopback and a probe process (``python -m bench.memory``)
that builds the Lambda-shaped event and runs the real handler on it against that server and the
bench database, then reports its peak RSS (``VmHWM``, else ``resource.getrusage``). Moto lives in its own process,
so the records Kinesis stores are not counted, as they would not be in Lambda.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.stack import HANDLER_ENV, REGION, STREAM, shards_for

_REPO = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class MemoryResult:
    """Peak RSS of the probe, and its RSS before the batch (imports and the event itself)."""

    messages: int
    peak_rss_mib: float
    before_batch_rss_mib: float


def _rss_mib() -> float:
    """Peak RSS of this process so far.

    ``VmHWM`` where Linux has it: ``getrusage``'s ``ru_maxrss`` survives ``fork`` and ``exec``, so a
    probe started by a large bench process would report the bench's own peak.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its URL, stops it on exit."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure_memory(messages: int, database_url: str) -> MemoryResult:
    """Run the probe on a ``messages`` batch; return its peak RSS."""
    with moto_server() as endpoint:
        env = {
            **os.environ,
            **HANDLER_ENV,
            "PYTHONPATH": os.pathsep.join([str(_REPO / "functions"), str(_REPO)]),
            "AWS_ENDPOINT_URL": endpoint,
            "DATABASE_URL": database_url,
        }
        output = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--messages", str(messages)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        ).stdout
    return MemoryResult(**json.loads(output.strip().splitlines()[-1]))


def _probe(messages: int) -> MemoryResult:
    """Inside the probe process: one handler batch, as in a Lambda with this event."""
    import boto3

    from bench.workload import make_batch
    from devkit.lambda_shapes import LambdaContext
    from processor.handler import lambda_handler

    client = boto3.client("kinesis", region_name=REGION)
    client.create_stream(StreamName=STREAM, ShardCount=shards_for(messages))
    event = make_batch(messages, seed=31_337).event
    before = _rss_mib()
    with contextlib.redirect_stdout(sys.stderr):
        response = lambda_handler(event, LambdaContext(timeout_ms=900_000))
    if response["batchItemFailures"]:
        raise RuntimeError(f"handler failed {len(response['batchItemFailures'])} messages")
    return MemoryResult(messages, _rss_mib(), before)


def main() -> None:
    """Entry point of the probe process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    result = _probe(parser.parse_args().messages)
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    main()
