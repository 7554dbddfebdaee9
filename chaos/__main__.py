"""``python -m chaos``: the full chaos suite (``make chaos DURATION=<seconds>``).

Runs the fault scenario for ``--duration`` seconds, with the atheris decoder fuzzer running beside it
for a bounded time, then writes every figure to ``--output`` (``build/chaos.json``): batches, messages,
faults by kind, each invariant's count, the fuzzer's runs, and the decoder's timed cost growth on
hostile bodies of 128 KiB and 1 MiB. Processor logs and EMF metrics go to
``--log``, not the terminal. Exits 1 when an invariant breaks or the fuzzer finds a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chaos.config import ChaosConfig, FaultRates
from chaos.harness import run_chaos
from chaos.model_check import model_check_for_chaos
from devkit.hostile import linear_cost_report

_ROOT = Path(__file__).resolve().parent.parent
_FUZZ_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of faults (default 600)")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="upper bound of the final drain")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate-scale", type=float, default=1.0, help="multiply every fault rate")
    parser.add_argument("--fuzz-seconds", type=int, default=None, help="atheris time (default duration/5, 10-120)")
    parser.add_argument("--output", type=Path, default=Path("build/chaos.json"))
    parser.add_argument("--log", type=Path, default=Path("build/chaos.log"))
    parser.add_argument("--model-examples", type=int, default=600, help="model-checker examples (default 600)")
    return parser.parse_args(argv)


def start_fuzzer(seconds: int, build: Path) -> subprocess.Popen[bytes]:
    """The atheris fuzzer in its own process, bounded by libFuzzer's ``-max_total_time``."""
    log = (build / "fuzz.log").open("wb")
    env = {**os.environ, "PYTHONPATH": f"{_ROOT / 'functions'}{os.pathsep}{_ROOT}"}
    command = [
        sys.executable,
        "-m",
        "chaos.fuzz_decoder",
        f"-max_total_time={seconds}",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={build}/fuzz-crash-",
        str(build / "fuzz-corpus"),
    ]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=_ROOT)  # noqa: S603


def finish_fuzzer(process: subprocess.Popen[bytes], seconds: int, build: Path) -> dict[str, Any]:
    """Wait for the fuzzer; return its runs, time and whether it found a crash."""
    try:
        code = process.wait(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    text = (build / "fuzz.log").read_text(errors="replace")
    done = _FUZZ_DONE.search(text)
    return {
        "seconds": int(done.group(2)) if done else None,
        "runs": int(done.group(1)) if done else None,
        "exit_code": code,
        "crashed": code != 0,
        "log": str(build / "fuzz.log"),
    }


def main(argv: list[str]) -> int:
    """Run the suite, write the figures, print a summary; non-zero when something broke."""
    args = parse_args(argv)
    config = ChaosConfig(
        duration_seconds=args.duration,
        drain_timeout_seconds=args.drain_timeout,
        seed=args.seed,
        rates=FaultRates().scaled(args.rate_scale),
    )
    build = args.output.parent
    build.mkdir(parents=True, exist_ok=True)
    fuzz_seconds = args.fuzz_seconds if args.fuzz_seconds is not None else int(min(120, max(10, args.duration / 5)))
    fuzzer = start_fuzzer(fuzz_seconds, build)
    started = time.monotonic()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("w") as log, contextlib.redirect_stdout(log):
        from telemetry_adapter.observability import logger

        logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
        result = run_chaos(config)
        result["model_check"] = model_check_for_chaos(args.model_examples)
    result["fuzz"] = finish_fuzzer(fuzzer, fuzz_seconds, build)
    if result["fuzz"]["crashed"]:
        result["broken"].append("fuzz")
        result["ok"] = False
    if not result["model_check"]["ok"]:
        result["broken"].append("model_check")
        result["ok"] = False
    result["linear_cost"] = linear_cost_report()
    if not result["linear_cost"]["ok"]:
        result["broken"].append("linear_cost")
        result["ok"] = False
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    print(f"figures: {args.output}; processor log: {args.log}")
    return 0 if result["ok"] else 1


def summary(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    faults = ", ".join(f"{kind} {count}" for kind, count in result["faults"].items())
    invariants = ", ".join(
        f"{name} {result[name]}"
        for name in ("lost", "order_violations", "invalid_published", "duplicates", "stuck", "dead_lettered")
    )
    fuzz = result["fuzz"]
    verdict = "all invariants hold" if result["ok"] else f"BROKEN: {', '.join(result['broken'])}"
    return (
        f"chaos: {result['batches']} batches, {result['messages']} messages, {result['records_in_stream']} records\n"
        f"faults: {faults}\n"
        f"invariants: {invariants}\n"
        f"fuzz: {fuzz['runs']} runs in {fuzz['seconds']} s, crashed={fuzz['crashed']}\n"
        f"model check: {result['model_check'].get('steps', 0)} deliveries, ok={result['model_check']['ok']}\n"
        f"decoder cost linear in body size (timed against json.loads): {result['linear_cost']['ok']}\n"
        f"{verdict}"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
