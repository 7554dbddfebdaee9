"""The Lambda code asset, bundled locally without Docker.

The asset is the locked dependencies (``requirements-lambda.lock``: every distribution pinned with the
hash of its wheel for CPython 3.12 on manylinux2014 arm64, written by ``python -m infra.lock``)
pip-installed with ``--require-hashes``, and the contents of ``functions/`` beside them. The runtime
dependencies are pure Python on purpose, so pip can install them for arm64 on any machine, and the
same folder imports on this x86_64 machine (a test runs the processor handler from the asset).

Bytecode: Lambda's file system is read-only, so a module without a matching ``.pyc`` is compiled in
memory on every cold start. The asset therefore ships ``__pycache__/*.cpython-312.pyc`` for every
module, compiled by a Python 3.12 interpreter (the runtime's own version; ``LAMBDA_PYTHON``, a
``python3.12`` on the PATH, or one installed by pyenv or uv), as ``unchecked-hash`` bytecode (the
asset never changes after it is built, so checking the source on import would be wasted work) with
``/var/task`` paths in tracebacks. Without a 3.12 interpreter the synth warns and ships sources
only; the asset hash tells the two apart.

The pip and compile steps are the slow part, so their output is cached in
``build/lambda-deps/<key>/``, keyed by the lock, the target platform and the bytecode interpreter.
The asset hash covers that key and every file under ``functions/``, so CDK skips bundling entirely
when an identical asset is already staged.
"""

from __future__ import annotations

import functools
import glob
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
LOCK_FILE = ROOT / "requirements-lambda.lock"
CACHE_DIR = ROOT / "build" / "lambda-deps"

PYTHON_VERSION = "3.12"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "manylinux2014_aarch64"
TASK_ROOT = "/var/task"
"""Where Lambda unpacks the asset (the paths tracebacks show)."""
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


def _reports_version(executable: str) -> bool:
    try:
        result = subprocess.run(  # noqa: S603 - a candidate interpreter, fixed arguments
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == PYTHON_VERSION


@functools.cache
def bytecode_python() -> str | None:
    """A Python interpreter of the Lambda runtime's version, to compile the asset's bytecode, or None."""
    home = Path.home()
    pyenv_root = Path(os.environ.get("PYENV_ROOT", home / ".pyenv"))
    candidates = [
        os.environ.get("LAMBDA_PYTHON", ""),
        sys.executable if sys.version_info[:2] == (3, 12) else "",
        shutil.which(f"python{PYTHON_VERSION}") or "",
        *sorted(glob.glob(str(pyenv_root / "versions" / f"{PYTHON_VERSION}.*" / "bin" / f"python{PYTHON_VERSION}")))[
            ::-1
        ],
        *sorted(glob.glob(str(home / ".local/share/uv/python" / f"cpython-{PYTHON_VERSION}.*" / "bin" / "python3")))[
            ::-1
        ],
    ]
    return next((candidate for candidate in candidates if candidate and _reports_version(candidate)), None)


def dependencies_key() -> str:
    """Cache key of the pip and compile steps: the lock, the platform, and whether bytecode is compiled."""
    bytecode = f"bytecode-{PYTHON_VERSION}" if bytecode_python() else "sources-only"
    digest = hashlib.sha256(f"{PIP_PLATFORM}/{PYTHON_VERSION}/{bytecode}\n".encode())
    digest.update(LOCK_FILE.read_bytes())
    return digest.hexdigest()[:16]


def asset_hash() -> str:
    """Hash of everything the asset is built from, so an unchanged asset is never bundled twice."""
    digest = hashlib.sha256(dependencies_key().encode())
    for path in _source_files():
        digest.update(str(path.relative_to(FUNCTIONS_DIR)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def compile_bytecode(root: Path, folders: list[Path] | None = None) -> bool:
    """Compile every module under ``folders`` (default: all of ``root``, the asset's top) for the Lambda
    runtime, with paths as Lambda sees them; False when no interpreter of its version is there."""
    python = bytecode_python()
    if python is None:
        return False
    command = [
        python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
        "-s", str(root), "-p", TASK_ROOT, *map(str, folders or [root]),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed argument list
    return True


def dependencies_dir() -> Path:
    """The locked runtime dependencies for Lambda, compiled, from the cache or installed now."""
    target = CACHE_DIR / dependencies_key()
    if (target / _MARKER).exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="deps-", dir=CACHE_DIR))
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile",  # the host interpreter's bytecode would be useless on Lambda: compiled below
        "--require-hashes", "--no-deps",  # exactly the locked wheels, nothing resolved anew
        "--platform", PIP_PLATFORM, "--only-binary=:all:", "--python-version", PYTHON_VERSION,
        "--implementation", "cp", "--target", str(staging), "--requirement", str(LOCK_FILE),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - fixed argument list, no shell
    if not compile_bytecode(staging):
        print(
            f"warning: no Python {PYTHON_VERSION} found (set LAMBDA_PYTHON, or install one with pyenv or uv): the "
            "Lambda asset ships without bytecode, and each cold start compiles every module in memory",
            file=sys.stderr,
        )
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
    """Fill ``output_dir`` with the dependencies and the function code, compiled for the runtime."""
    shutil.copytree(
        dependencies_dir(),
        output_dir,
        dirs_exist_ok=True,
        copy_function=_link_or_copy,
        ignore=shutil.ignore_patterns(_MARKER),
    )
    ours: set[Path] = set()
    for path in _source_files():
        relative = path.relative_to(FUNCTIONS_DIR)
        destination = output_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        ours.add(output_dir / relative.parts[0])
    # Only our packages: the cached dependencies are compiled already.
    compile_bytecode(output_dir, sorted(folder for folder in ours if folder.is_dir()))


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
