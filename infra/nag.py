"""cdk-nag (v3) wiring: the AwsSolutions checks and written acknowledgments of accepted findings.

cdk-nag 3 runs as a CDK validation plugin: an unacknowledged finding fails ``cdk synth``. Each
acknowledgment names one finding (``RuleId`` or ``RuleId[FindingId]``) and must say why it is
acceptable; it applies to the construct it is attached to and to that construct's children.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def acknowledge(scope: IConstruct, *findings: tuple[str, str]) -> None:
    """Accept each ``(finding id, reason)`` on ``scope`` and its children; a reason is mandatory."""
    for finding, reason in findings:
        if len(reason.strip()) < 20:
            raise ValueError(f"acknowledging {finding} needs a written reason")
        cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of a construct's main resource: findings name resources by it."""
    stack = cdk.Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(construct.node.default_child)))  # type: ignore[arg-type]


def add_checks(app: cdk.App) -> None:
    """Run the AwsSolutions pack on every synth of ``app``."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def findings(scope: IConstruct) -> list[str]:
    """Unacknowledged AwsSolutions findings in ``scope``, as ``rule at path: description`` lines."""
    report = AwsSolutionsChecks(scope, verbose=False).validate_scope(scope)
    lines = []
    for violation in report.violations:
        paths = [resource.construct_path or resource.resource_logical_id for resource in violation.violating_resources]
        lines.append(f"{violation.rule_name} at {', '.join(p or '?' for p in paths)}: {violation.description[:120]}")
    return lines
