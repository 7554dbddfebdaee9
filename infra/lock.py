"""``python -m infra.lock``: lock the Lambda asset's dependencies, with hashes, for the Lambda platform.

``requirements.txt`` names the runtime dependencies; this resolves them, and everything they pull in,
for the platform the functions run on (CPython 3.12 on manylinux2014 arm64, wheels only) with pip's
own resolver (``pip install --dry-run --report``), and writes every distribution with its version
and the SHA-256 of the exact wheel into ``requirements-lambda.lock``. Bundling installs from the lock
with ``--require-hashes --no-deps``, so a synth next month ships the same bytes, and the asset hash
is keyed on the lock.

Run it after changing ``requirements.txt``; a test fails while the two disagree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.bundling import LOCK_FILE, PIP_PLATFORM, PYTHON_VERSION, REQUIREMENTS

HEADER = (
    "# The Lambda asset's dependencies for CPython {python} on {platform}, every one pinned with the hash\n"
    "# of its wheel. Written by `python -m infra.lock` from requirements.txt; do not edit by hand.\n"
)


def resolve(requirements: Path = REQUIREMENTS) -> list[tuple[str, str, str]]:
    """``(name, version, sha256)`` of every distribution the requirements need on Lambda, by name."""
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--dry-run",
            "--ignore-installed", "--report", str(report), "--platform", PIP_PLATFORM, "--only-binary=:all:",
            "--python-version", PYTHON_VERSION, "--implementation", "cp", "--target", str(Path(work) / "target"),
            "--requirement", str(requirements),
        ]  # fmt: skip
        subprocess.run(command, check=True)  # noqa: S603 - fixed argument list, no shell
        installs = json.loads(report.read_text())["install"]
    return sorted(
        (
            item["metadata"]["name"].lower().replace("_", "-"),
            item["metadata"]["version"],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in installs
    )


def render(pins: list[tuple[str, str, str]]) -> str:
    """The lock file's text."""
    lines = [HEADER.format(python=PYTHON_VERSION, platform=PIP_PLATFORM)]
    lines += [f"{name}=={version} \\\n    --hash=sha256:{digest}\n" for name, version, digest in pins]
    return "".join(lines)


def main() -> int:
    """Write the lock file next to requirements.txt."""
    LOCK_FILE.write_text(render(resolve()), encoding="utf-8")
    print(f"wrote {LOCK_FILE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
