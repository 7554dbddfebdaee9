"""The bundled Lambda asset in cdk.out imports on its own: handlers and dependencies come from it alone."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_asset_has_no_caches_or_tests(synthesized: Synthesized) -> None:
    from pathlib import Path

    folder = Path(asset_dir(synthesized))
    ours = [folder / name for name in ("processor", "health", "telemetry_adapter", "migrate", "cleanup")]
    for package in ours:
        assert package.is_dir(), package
        assert not list(package.rglob("__pycache__")), package
        assert not list(package.rglob("*.pyc")), package
    assert (folder / "telemetry_adapter" / "ledger" / "migrations").is_dir()
    assert not (folder / "tests").exists()
