#!/usr/bin/env python3
"""CDK entry point (``cdk.json`` runs it): ``make synth`` writes ``cdk.out/``, ``make deploy`` deploys."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.app import build_app
from infra.settings import ContextError


def main() -> int:
    """Synthesize the stack; a bad context value stops here with a message naming it."""
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
