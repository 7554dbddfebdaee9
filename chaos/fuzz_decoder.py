"""Coverage-guided fuzzing of the decoder with atheris (libFuzzer), run for a bounded time by ``make chaos``.

``python -m chaos.fuzz_decoder [libFuzzer flags] [corpus dir]``, e.g. ``-max_total_time=60``. Each input
becomes a message body in one of four ways (raw text, base64 of the bytes, bytes spliced into a valid
submission, a body that looks like a JSON object), so the fuzzer reaches both the decoding and the
validation layers. The property: ``parse_submission`` either returns a submission that respects the
limits or raises ``Rejected``; any other exception is a crash that libFuzzer reports and saves.
Small limits keep every limit check within the fuzzer's reach.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from telemetry_adapter.submission import parse_submission

from devkit import fleet
from devkit.lifetime import die_with_parent
from telemetry_adapter.config import Limits
from telemetry_adapter.rejections import Rejected

LIMITS = Limits(max_body_bytes=64 * 1024, max_events=64, max_cmdl_chars=256, max_string_chars=64, max_depth=16)
_TEMPLATE = json.dumps(
    fleet.submission(
        random.Random(1),  # noqa: S311 - test data, not cryptography
        fleet.device_ids(1)[0],
        processes=2,
        connections=2,
    )
)


def body_from(data: bytes) -> str:
    """Turn fuzzer bytes into an SQS message body."""
    provider = atheris.FuzzedDataProvider(data)
    mode = provider.ConsumeIntInRange(0, 3)
    if mode == 2:
        at = provider.ConsumeIntInRange(0, len(_TEMPLATE))
        cut = provider.ConsumeIntInRange(0, 16)
        insert = provider.ConsumeUnicodeNoSurrogates(provider.remaining_bytes())
        return base64.b64encode((_TEMPLATE[:at] + str(insert) + _TEMPLATE[at + cut :]).encode()).decode()
    rest = bytes(provider.ConsumeBytes(provider.remaining_bytes()))
    if mode == 0:
        return rest.decode("utf-8", "surrogateescape")
    if mode == 1:
        return base64.b64encode(rest).decode()
    return "{" + rest.decode("latin-1")


def check_one(data: bytes) -> None:
    """The fuzz target: only Rejected may escape, and an accepted submission respects the limits."""
    try:
        submission = parse_submission(body_from(data), LIMITS)
    except Rejected:
        return
    if len(submission.events) > LIMITS.max_events or submission.submission_id != submission.submission_id.lower():
        raise AssertionError(f"accepted a submission outside the limits: {submission.submission_id}")


def write_seed_corpus(directory: Path) -> None:
    """Valid submissions and known defects as starting points (mode byte 1: base64 of the bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2)  # noqa: S311 - test data, not cryptography
    devices = fleet.device_ids(3)
    for index in range(8):
        document = fleet.submission(rng, devices[index % 3])
        if index % 2:
            document = fleet.with_defect(document, fleet.DEFECTS[index % len(fleet.DEFECTS)])
        (directory / f"seed-{index}").write_bytes(b"\x01" + json.dumps(document).encode())


def main(argv: list[str]) -> None:
    """Run libFuzzer with ``argv`` (flags and corpus directories); a chaos run killed outright takes it along."""
    die_with_parent()
    for argument in argv[1:]:
        if not argument.startswith("-"):
            write_seed_corpus(Path(argument))
    atheris.Setup(argv, check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
