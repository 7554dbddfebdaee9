"""What happens to a resource with state when its stack is deleted or its first create fails."""

from __future__ import annotations

from aws_cdk import RemovalPolicy

from infra.settings import DeploySettings


def kept_unless_dev(settings: DeploySettings) -> RemovalPolicy:
    """DESTROY in the disposable dev stage. Elsewhere CloudFormation's ``RetainExceptOnCreate``: kept when
    the stack is deleted or the resource replaced, removed when the stack's FIRST create fails and rolls
    back, so a retry does not collide with a name the failed attempt left behind."""
    return RemovalPolicy.DESTROY if settings.is_dev else RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
