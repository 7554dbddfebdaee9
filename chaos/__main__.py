"""``python -m chaos``: the full chaos suite (``make chaos ARGS='--duration <seconds>'``).

Runs the fault scenario for ``--duration`` seconds, with the atheris decoder fuzzer running beside it
for a bounded time, then writes every figure to ``--output`` (``build/chaos.json``): batches, messages,
faults by kind, each invariant's count, the fuzzer's runs, and the decoder's timed cost growth on
hostile bodies of 128 KiB and 1 MiB. A heartbeat line every ``--heartbeat`` seconds shows elapsed of
total, batches, faults and the invariant violations seen so far. Processor logs and EMF metrics go
to ``--log``, not the terminal.

Ctrl-C ends the fault phase and drains (a second Ctrl-C skips the drain; SIGTERM skips it at once);
the run is then checked as far as it went, the figures are written with ``"interrupted": true``, the
fuzzer is stopped, and the embedded PostgreSQL is stopped and deleted. SIGHUP (the terminal closed),
or a write to the terminal that fails (``make chaos | head -1``), stops the run as SIGTERM does, and
nothing more is printed.

Exit status: 0 when every invariant holds, 1 when one breaks or the fuzzer finds a crash, 2 for a
usage or configuration error (a ``TEST_DATABASE_URL`` that cannot be reached: one line, the traceback
too with ``--debug``), 129 when the terminal went away, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from chaos.config import ChaosConfig, FaultRates
from chaos.control import RunControl
from chaos.harness import run_chaos
from chaos.heartbeat import Heartbeat
from chaos.model_check import default_examples, model_check_for_chaos
from devkit.cli_errors import reported
from devkit.cli_flags import HelpFormatter, integer, number
from devkit.hostile import linear_cost_report
from devkit.lifetime import child_environment
from devkit.terminal import HANGUP_EXIT, STOPPED_EXIT, Output, Terminal

_ROOT = Path(__file__).resolve().parent.parent
_FUZZ_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_FUZZ_PROGRESS = re.compile(r"^#(\d+)\s", re.MULTILINE)
_FUZZER_STOP_SECONDS = 10
INTERRUPTED_EXIT = STOPPED_EXIT
HANGUP = "SIGHUP"
TERMINAL_GONE = "the terminal went away"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line flags, each checked against its range."""
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    """The flags (``make chaos ARGS='--help'``)."""
    parser = argparse.ArgumentParser(
        prog="make chaos ARGS='...'  (or python -m chaos)",
        description="Fault injection through the real handler, against PostgreSQL and Kinesis on moto, with the "
        "decoder fuzzer beside it; every invariant checked at the end. Ctrl-C stops early and keeps the figures.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--duration", type=number(1, 7 * 86_400), default=600.0, help="seconds of faults")
    parser.add_argument("--drain-timeout", type=number(1, 3600), default=120.0, help="upper bound of the final drain")
    parser.add_argument("--seed", type=integer(), default=7, help="fault schedule and traffic seed")
    parser.add_argument("--rate-scale", type=number(0, 100), default=1.0, help="multiply every fault rate (0: none)")
    parser.add_argument(
        "--fuzz-seconds",
        type=integer(1, 86_400),
        default=None,
        help="atheris fuzzer time [default: duration/5, between 10 and 120]",
    )
    parser.add_argument("--heartbeat", type=number(0, 3600), default=10.0, help="seconds between lines; 0: none")
    parser.add_argument(
        "--model-examples",
        type=integer(0, 1_000_000),
        default=None,
        help="model-checker examples, after the fault run [default: one per second of --duration, 10 to 2,000]",
    )
    parser.add_argument(
        "--no-timed-check",
        dest="timed_check",
        action="store_false",
        help="skip the decoder's timed cost-growth check (wall-clock ratios: meaningless on a loaded machine, "
        "so the tests that only exercise the tool's life cycle leave it out)",
    )
    parser.add_argument("--output", type=Path, default=Path("build/chaos.json"), help="the figures (JSON)")
    parser.add_argument("--log", type=Path, default=Path("build/chaos.log"), help="processor logs and metrics")
    parser.add_argument("--debug", action="store_true", help="on an error, print the traceback too")
    return parser


@dataclass
class Fuzzer:
    """The atheris fuzzer in its own process, bounded by libFuzzer's ``-max_total_time``."""

    process: subprocess.Popen[bytes]
    seconds: int
    build: Path
    started: float

    @classmethod
    def start(cls, seconds: int, build: Path) -> Fuzzer:
        """Start fuzzing the decoder for ``seconds``; corpus, crashes and log in ``build``."""
        started = time.time()
        log = (build / "fuzz.log").open("wb")
        command = [
            sys.executable,
            "-m",
            "chaos.fuzz_decoder",
            f"-max_total_time={seconds}",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={build}/fuzz-crash-",
            str(build / "fuzz-corpus"),
        ]
        environment = {**os.environ, **child_environment()}  # it dies with this run, however the run ends
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=_ROOT, env=environment)  # noqa: S603
        log.close()
        return cls(process, seconds, build, started)

    def finish(self, *, interrupted: bool = False) -> dict[str, Any]:
        """Wait for the fuzzer (stopping it first when the run was interrupted); return its runs, time and
        whether it found a crash (a stopped fuzzer exits non-zero as well: then only a crash file counts)."""
        if interrupted and self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=_FUZZER_STOP_SECONDS if interrupted else self.seconds + 120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        text = (self.build / "fuzz.log").read_text(errors="replace")
        done = _FUZZ_DONE.search(text)
        progress = _FUZZ_PROGRESS.findall(text)  # a stopped fuzzer prints no total: its last progress line
        crash_files = sorted(
            str(path) for path in self.build.glob("fuzz-crash-*") if path.stat().st_mtime >= self.started
        )
        return {
            "seconds": int(done.group(2)) if done else round(time.time() - self.started),
            "runs": int(done.group(1)) if done else int(progress[-1]) if progress else None,
            "exit_code": code,
            "interrupted": interrupted,
            "crashed": bool(crash_files) if interrupted else code != 0,
            "crash_files": crash_files,
            "log": str(self.build / "fuzz.log"),
        }


@contextlib.contextmanager
def stop_requests(control: RunControl, messages: Output) -> Iterator[None]:
    """Ctrl-C asks the run to stop (twice: to skip the drain; a third time: stop at once); SIGTERM and
    SIGHUP ask to stop without the drain. Restored on exit."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and control.abort.is_set():
            raise KeyboardInterrupt
        reason = {signal.SIGINT: "Ctrl-C", signal.SIGHUP: HANGUP}.get(signal.Signals(signum), "SIGTERM")
        control.request(reason, abort=signum != signal.SIGINT)
        step = "skipping the drain" if control.abort.is_set() else "draining (Ctrl-C again to skip the drain)"
        messages.write(f"chaos: stop requested, {step}; then the checks and the figures\n")

    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, on_signal) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv: list[str]) -> int:
    """Run the suite, write the figures, print a summary; non-zero when something broke or it was stopped."""
    args = parse_args(argv)
    return reported("chaos", lambda: _run(args), debug=args.debug)


def _run(args: argparse.Namespace) -> int:
    config = ChaosConfig(
        duration_seconds=args.duration,
        drain_timeout_seconds=args.drain_timeout,
        seed=args.seed,
        rates=FaultRates().scaled(args.rate_scale),
    )
    build = args.output.parent
    build.mkdir(parents=True, exist_ok=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    fuzz_seconds = args.fuzz_seconds if args.fuzz_seconds is not None else int(min(120, max(10, args.duration / 5)))
    control = RunControl()

    def terminal_gone() -> None:
        control.request(TERMINAL_GONE, abort=True)

    terminal = Terminal(sys.stdout, on_lost=terminal_gone)
    messages = Terminal(sys.stderr, on_lost=terminal_gone)
    control.observer = Heartbeat(terminal, total_seconds=args.duration, every=args.heartbeat)
    terminal.write(
        f"chaos: {args.duration:.0f} s of faults, then a drain of up to {args.drain_timeout:.0f} s; decoder fuzzer "
        f"for {fuzz_seconds} s; a line every {args.heartbeat:.0f} s. Ctrl-C stops early and keeps the figures.\n"
    )
    started = time.monotonic()
    with stop_requests(control, messages):
        fuzzer = Fuzzer.start(fuzz_seconds, build)
        try:
            with args.log.open("w") as log, contextlib.redirect_stdout(log):
                from telemetry_adapter.observability import logger

                logger.registered_handler.setStream(log)  # type: ignore[attr-defined]
                result = run_chaos(config, control=control)
                examples = args.model_examples if args.model_examples is not None else default_examples(args.duration)
                result["model_check"] = model_check_for_chaos(
                    examples, should_stop=control.stop.is_set, progress=partial(print, file=terminal)
                )
        except BaseException:
            fuzzer.finish(interrupted=True)  # the run failed to start or was stopped hard: no fuzzer left behind
            raise
        fuzz = fuzzer.finish(interrupted=control.interrupted)
        result["fuzz"] = fuzz
        if fuzz["crashed"]:
            result["broken"].append("fuzz")
            result["ok"] = False
        if not result["model_check"]["ok"]:
            result["broken"].append("model_check")
            result["ok"] = False
        if control.interrupted:
            result["linear_cost"] = {"ok": None, "skipped": "the run was interrupted"}
        elif not args.timed_check:
            result["linear_cost"] = {"ok": None, "skipped": "--no-timed-check"}
        else:
            result["linear_cost"] = linear_cost_report()
            if not result["linear_cost"]["ok"]:
                result["broken"].append("linear_cost")
                result["ok"] = False
    result["interrupted"] = control.interrupted
    result["interrupted_by"] = control.reason or None
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    terminal.write(summary(result) + "\n")
    terminal.write(f"figures: {args.output}; processor log: {args.log}\n")
    if control.reason in (HANGUP, TERMINAL_GONE):
        return HANGUP_EXIT
    if control.interrupted:
        return INTERRUPTED_EXIT
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
    if result.get("interrupted"):
        verdict = (
            f"INTERRUPTED ({result['interrupted_by']}) after {result['fault_seconds']} s of faults: the figures cover "
            f"the run so far (submissions still in flight count as lost or unfinished); {verdict}"
        )
    linear = result["linear_cost"]["ok"]
    return (
        f"chaos: {result['batches']} batches, {result['messages']} messages, {result['records_in_stream']} records\n"
        f"faults: {faults}\n"
        f"invariants: {invariants}\n"
        f"fuzz: {fuzz['runs']} runs in {fuzz['seconds']} s, crashed={fuzz['crashed']}\n"
        f"model check: {result['model_check'].get('steps', 0)} deliveries, ok={result['model_check']['ok']}\n"
        f"decoder cost linear in body size (timed against json.loads): {'skipped' if linear is None else linear}\n"
        f"{verdict}"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
