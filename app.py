#!/usr/bin/env python3
"""CDK entry point (``cdk.json`` runs it): ``make synth`` writes ``cdk.out/``, ``make deploy`` deploys.

Runs with any ``python3``: when the CDK libraries are not importable here it re-runs itself with the
project's ``.venv`` interpreter (``make synth`` creates it), or says which command to run first.
``functions/`` goes on the import path, because the stack checks its settings with the functions' own
rules (``telemetry_adapter.time_budget``, ``telemetry_adapter.retry_schedule``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _ensure_cdk_importable() -> None:
    try:
        import aws_cdk  # noqa: F401
    except ModuleNotFoundError:
        if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # noqa: S606 - the project's own venv
        sys.exit("aws-cdk-lib is not installed: run `make synth` once (it creates .venv), then `cdk synth` works")


def main() -> int:
    """Synthesize the stack; a bad context value stops here with a message naming it."""
    _ensure_cdk_importable()
    for path in (ROOT / "functions", ROOT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import aws_cdk as cdk

    from infra.app import build_app
    from infra.settings import ContextError

    # Asset paths in the template metadata, for `sam local invoke -t cdk.out/...` (the CLI sets this too).
    app = cdk.App(context={"aws:cdk:enable-asset-metadata": True})
    try:
        build_app(app)
    except ContextError as error:
        print(f"invalid CDK context: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
