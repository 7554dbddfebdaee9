"""The Lambda code asset, bundled locally without Docker.

The asset is ``requirements.txt`` pip-installed for the Lambda platform (manylinux2014 on arm64,
CPython 3.12) with the contents of ``functions/`` beside it. The runtime dependencies are pure Python
on purpose, so pip can install them for arm64 on any machine, and the same folder imports on this
x86_64 machine (a test loads the processor handler from the synthesized asset).

The pip step is the slow part, so its output is cached in ``build/lambda-deps/<key>/``, keyed by the
requirements and the target platform: synths (and the test session) re-download nothing until
``requirements.txt`` changes. The asset hash covers the requirements and every file under
``functions/``, so CDK skips bundling entirely when an identical asset is already staged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
REQUIREMENTS = ROOT / "requirements.txt"
CACHE_DIR = ROOT / "build" / "lambda-deps"

PYTHON_VERSION = "3.12"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "manylinux2014_aarch64"
IGNORED = ("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", ".ruff_cache", "tests")
_MARKER = ".complete"


def _source_files() -> list[Path]:
    """Files of ``functions/`` that go into the asset (caches and tests excluded)."""
    files = []
    for path in sorted(FUNCTIONS_DIR.rglob("*")):
        parts = path.relative_to(FUNCTIONS_DIR).parts
        hidden = any(part in ("__pycache__", "tests") or part.startswith(".") for part in parts)
        if path.is_file() and not hidden and path.suffix not in (".pyc", ".pyo"):
            files.append(path)
    return files


def dependencies_key() -> str:
    """Cache key of the pip step: the requirements and the platform they are installed for."""
    digest = hashlib.sha256(f"{PIP_PLATFORM}/{PYTHON_VERSION}\n".encode())
    digest.update(REQUIREMENTS.read_bytes())
    return digest.hexdigest()[:16]


def asset_hash() -> str:
    """Hash of everything the asset is built from, so an unchanged asset is never bundled twice."""
    digest = hashlib.sha256(dependencies_key().encode())
    for path in _source_files():
        digest.update(str(path.relative_to(FUNCTIONS_DIR)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def dependencies_dir() -> Path:
    """The pip-installed runtime dependencies for Lambda, from the cache or installed now."""
    target = CACHE_DIR / dependencies_key()
    if (target / _MARKER).exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="deps-", dir=CACHE_DIR))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # the host interpreter's .pyc files would be useless on Lambda
        "--platform",
        PIP_PLATFORM,
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--target",
        str(staging),
        "--requirement",
        str(REQUIREMENTS),
    ]
    subprocess.run(command, check=True)  # noqa: S603 - fixed argument list, no shell
    (staging / _MARKER).write_text(dependencies_key(), encoding="utf-8")
    try:
        staging.rename(target)
    except OSError:  # another synth finished first; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _link_or_copy(source: str, destination: str) -> None:
    """Hard-link when possible (fast, no extra disk); copy across file systems."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def build_asset(output_dir: Path) -> None:
    """Fill ``output_dir`` with the dependencies and the function code."""
    shutil.copytree(
        dependencies_dir(),
        output_dir,
        dirs_exist_ok=True,
        copy_function=_link_or_copy,
        ignore=shutil.ignore_patterns(_MARKER),
    )
    for path in _source_files():
        destination = output_dir / path.relative_to(FUNCTIONS_DIR)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


@jsii.implements(cdk.ILocalBundling)
class LocalBundler:
    """CDK local bundling hook: builds the asset on this machine, so Docker is never needed."""

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: object) -> bool:
        """Build the asset into ``output_dir``; True tells CDK that no Docker fallback is needed."""
        del image
        build_asset(Path(output_dir))
        return True


def lambda_code() -> lambda_.Code:
    """The one code asset every function of the stack runs (handlers differ by path)."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=asset_hash(),
        exclude=list(IGNORED),
        bundling=cdk.BundlingOptions(
            # CDK requires an image, but LocalBundler always succeeds, so Docker is never started.
            image=RUNTIME.bundling_image,
            command=["bash", "-c", "echo 'this asset is bundled locally: see infra/bundling.py' >&2; exit 1"],
            local=LocalBundler(),
        ),
    )
