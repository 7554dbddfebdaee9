"""Building the CDK app: settings from context, the stage's stack, and the cdk-nag AwsSolutions checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aws_cdk as cdk

from infra.nag import add_checks
from infra.naming import Names
from infra.settings import load_settings
from infra.stack import TelemetryAdapterStack


def add_stack(
    app: cdk.App, context: Callable[[str], Any] | Mapping[str, Any], construct_id: str | None = None
) -> TelemetryAdapterStack:
    """Add one stage's stack, configured by ``context``, to ``app``.

    The stack is environment-agnostic unless the ``account`` and ``region`` context values are set,
    so ``make synth`` works offline with no AWS account.
    """
    settings = load_settings(context)
    env = cdk.Environment(account=settings.account, region=settings.region) if settings.account else None
    return TelemetryAdapterStack(app, construct_id or Names(settings.stage).stack, settings=settings, env=env)


def build_app(app: cdk.App) -> TelemetryAdapterStack:
    """Add the stack the app's context describes and attach the cdk-nag checks (findings fail ``cdk synth``)."""
    stack = add_stack(app, app.node.try_get_context)
    add_checks(app)
    return stack
