"""The bundled Lambda asset in cdk.out imports on its own: handlers and dependencies come from it alone."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bundling
from infra.bundling import LOCK_FILE, PIP_PLATFORM, PYTHON_VERSION, REQUIREMENTS, bytecode_python
from tests.infra.conftest import Synthesized

PROBE = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
found = {}
for name in ("processor.handler", "health.handler", "migrate.handler", "cleanup.handler",
             "boto3", "pg8000", "aws_lambda_powertools"):
    found[name] = importlib.import_module(name).__file__
print(json.dumps(found))
"""


def asset_dir(synthesized: Synthesized) -> str:
    code = synthesized.resources["ProcessorFunction"]["Metadata"]["aws:asset:path"]
    return str(synthesized.outdir / code)


def test_processor_handler_imports_from_the_asset_only(synthesized: Synthesized) -> None:
    folder = asset_dir(synthesized)
    # -I ignores PYTHONPATH and the user site, -S skips site-packages (only the stdlib and the asset
    # remain), -B leaves the asset free of .pyc files.
    result = subprocess.run(
        [sys.executable, "-B", "-I", "-S", "-c", PROBE, folder],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert all(path.startswith(folder) for path in found.values()), found


def test_asset_has_no_tests_and_no_host_bytecode(synthesized: Synthesized) -> None:
    folder = Path(asset_dir(synthesized))
    ours = [folder / name for name in ("processor", "health", "telemetry_adapter", "migrate", "cleanup")]
    for package in ours:
        assert package.is_dir(), package
        tags = {path.name.split(".")[-2] for path in package.rglob("*.pyc")}
        assert tags <= {"cpython-312"}, (package, tags)
    assert (folder / "telemetry_adapter" / "ledger" / "migrations").is_dir()
    assert not (folder / "tests").exists()


def test_asset_ships_unchecked_bytecode_for_the_lambda_runtime(synthesized: Synthesized) -> None:
    if bytecode_python() is None:
        pytest.fail(
            f"no Python {PYTHON_VERSION} to compile the asset's bytecode: install one (pyenv or uv) or "
            "set LAMBDA_PYTHON to its path"
        )
    folder = Path(asset_dir(synthesized))
    packages = ["processor", "health", "telemetry_adapter", "migrate", "cleanup", "boto3", "pg8000", "botocore"]
    checked = 0
    for package in packages:
        for source in (folder / package).rglob("*.py"):
            compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
            assert compiled.is_file(), compiled
            header = compiled.read_bytes()[:8]
            assert int.from_bytes(header[4:8], "little") == 0b01, compiled  # hash-based, source not checked
            checked += 1
    assert checked > 100


def lock_pins() -> dict[str, str]:
    text = LOCK_FILE.read_text()
    pins = dict(re.findall(r"^([a-z0-9.-]+)==(\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", text, re.MULTILINE))
    assert len(pins) == text.count("==") > 5, "every locked distribution carries a sha256 hash"
    return pins


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_is_for_the_lambda_platform_and_covers_requirements() -> None:
    header = LOCK_FILE.read_text().splitlines()[0]
    assert PYTHON_VERSION in header
    assert PIP_PLATFORM in header
    pins = lock_pins()
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE):
        assert pins.get(normalized(name)) == version, f"{name}=={version}: run `python -m infra.lock`"


def test_asset_holds_exactly_the_locked_distributions(synthesized: Synthesized) -> None:
    installed = {}
    for info in Path(asset_dir(synthesized)).glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[normalized(name)] = version
    assert installed == lock_pins()


def test_asset_hash_is_keyed_on_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = bundling.asset_hash()
    changed = tmp_path / "requirements-lambda.lock"
    changed.write_text(LOCK_FILE.read_text() + "# changed\n")
    monkeypatch.setattr(bundling, "LOCK_FILE", changed)
    assert bundling.asset_hash() != before
