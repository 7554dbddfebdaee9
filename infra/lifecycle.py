"""What happens to a resource with state when its stack is deleted or its first create fails.

The dev stage is disposable: deleting its stack deletes everything it created, the database without
a final snapshot. Any other stage keeps what holds data when its stack is deleted (the queues, the
stream, the buckets, the logs; the database leaves a final snapshot), and removes it when the
stack's first create fails, so a retry does not collide with a name the failed attempt left behind.
"""

from __future__ import annotations

import re

from aws_cdk import CfnResource, CustomResourceProviderBase, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs

from infra.naming import Names
from infra.settings import DeploySettings

LOG_RETENTION = logs.RetentionDays.ONE_MONTH
"""How long every log group of the stack keeps its events."""


def kept_unless_dev(settings: DeploySettings) -> RemovalPolicy:
    """DESTROY in the disposable dev stage. Elsewhere CloudFormation's ``RetainExceptOnCreate``: kept when
    the stack is deleted or the resource replaced, removed when the stack's FIRST create fails and rolls
    back, so a retry does not collide with a name the failed attempt left behind."""
    return RemovalPolicy.DESTROY if settings.is_dev else RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE


def database_removal(settings: DeploySettings) -> RemovalPolicy:
    """The ledger database: no final snapshot in dev (nothing there is worth one), a final snapshot
    elsewhere. A snapshot is not a name, so it never collides with a stack created again."""
    return RemovalPolicy.DESTROY if settings.is_dev else RemovalPolicy.SNAPSHOT


def log_cdk_helpers(stack: Stack, settings: DeploySettings, names: Names) -> None:
    """Give CDK's own helper functions a log group of the stack, with a retention.

    CDK's custom resource providers (``Custom::VpcRestrictDefaultSG``, which empties the VPC's default
    security group, and in dev ``Custom::S3AutoDeleteObjects``, which empties a bucket before its
    deletion) take no log-group setting, so Lambda would create ``/aws/lambda/<generated name>`` on
    their first run: outside the stack, kept forever, never deleted. Each gets
    ``/telemetry-adapter/<stage>/cdk-<provider>`` instead, through its function's ``LoggingConfig``
    (their role's AWS-managed basic execution policy may write to any group).
    """
    for provider in stack.node.children:
        if not isinstance(provider, CustomResourceProviderBase):
            continue
        handler = provider.node.try_find_child("Handler")
        if not isinstance(handler, CfnResource):
            raise AssertionError(f"CDK's provider {provider.node.id} has no Handler function")
        group = logs.LogGroup(
            stack,
            f"{provider.node.id.replace('Custom::', '')}Logs",
            log_group_name=names.log_group(f"cdk-{_kebab(provider.node.id)}"),
            retention=LOG_RETENTION,
            removal_policy=kept_unless_dev(settings),
        )
        handler.add_property_override("LoggingConfig", {"LogGroup": group.log_group_name})


def _kebab(provider_id: str) -> str:
    """``Custom::VpcRestrictDefaultSGCustomResourceProvider`` -> ``vpc-restrict-default-sg``."""
    core = provider_id.removeprefix("Custom::").removesuffix("CustomResourceProvider")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", core).lower()
