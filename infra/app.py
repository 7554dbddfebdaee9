"""Building the CDK app: settings from context, the stack, and the cdk-nag AwsSolutions checks."""

from __future__ import annotations

import aws_cdk as cdk

from infra.nag import add_checks
from infra.settings import ContextError, load_settings
from infra.stack import STACK_NAME, TelemetryAdapterStack


def build_app(app: cdk.App) -> TelemetryAdapterStack:
    """Add the stack to ``app`` and attach the cdk-nag checks (findings fail ``cdk synth``).

    The stack is environment-agnostic unless the ``account`` and ``region`` context values are set,
    so ``make synth`` works offline with no AWS account.
    """
    settings = load_settings(app.node.try_get_context)
    account, region = app.node.try_get_context("account"), app.node.try_get_context("region")
    if (account is None) != (region is None):
        raise ContextError("set both account and region context values, or neither")
    env = cdk.Environment(account=str(account), region=str(region)) if account else None
    stack = TelemetryAdapterStack(app, STACK_NAME, settings=settings, env=env)
    add_checks(app)
    return stack
