"""The CDK app synthesized once per test session, in every supported context variant.

All variants are stacks of ONE app, so the Lambda asset is bundled and staged once and a single
``app.synth()`` writes every template; cdk-nag runs per stack, cfn-lint once over all templates.
"""

from __future__ import annotations

import os

# jsii prints a banner on every start under Node 20; the CDK works, and the banner hides test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.app import add_stack
from infra.nag import findings
from infra.stack import TelemetryAdapterStack
from telemetry_adapter.ledger.connection import DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"
# What `cdk synth` passes the app from cdk.json: the feature flags (which change the template) and
# every committed context value. A variant's own values win, as `-c key=value` does on the command line.
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
RUNBOOK = {"runbookUrl": "https://ops.example.com/telemetry/runbook/"}
PAGED = {"alarmEmail": "ops@example.com", **RUNBOOK}
EXTERNAL = {"alarmsSubscribedExternally": True, **RUNBOOK}

# Every supported context variant: name -> context. The default (dev) stage first.
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "prod": {"stage": "prod", "quarantineRetentionDays": 90, **PAGED},
    "public-health": {"stage": "pub", "healthUrlAuth": "NONE", **PAGED},
    "provisioned-stream": {
        "stage": "prov",
        "streamMode": "provisioned",
        "shardCount": 2,
        "streamRetentionHours": 48,
        **EXTERNAL,
    },
    "multi-az": {"stage": "maz", "dbMultiAz": True, "dbInstanceClass": "r7g.large", **PAGED},
    "no-tracing": {"stage": "notrace", "tracing": False, **EXTERNAL},
    "no-insights": {"stage": "noinsights", "lambdaInsights": False, **EXTERNAL},
    "pinned": {"stage": "pinned", "account": "123456789012", "region": "eu-west-1", **PAGED},
    "local": {"stage": "local", "local": True, "logLevel": "DEBUG", **EXTERNAL},
}
LINT_REGIONS = ("us-east-1", "eu-west-1")


@dataclass(frozen=True)
class Synthesized:
    """One synthesized stack: its template (as assertions and as JSON), the cloud assembly folder."""

    name: str
    context: Mapping[str, Any]
    stack: TelemetryAdapterStack
    template: Template
    json: dict[str, Any]
    outdir: Path
    template_path: Path
    nag_findings: list[str]

    @property
    def resources(self) -> dict[str, Any]:
        """Resources by logical id."""
        resources: dict[str, Any] = self.json["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, Any]:
        """Resources of one CloudFormation type, by logical id."""
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}


@dataclass(frozen=True)
class Assembly:
    """Every variant's stack, and cfn-lint's verdict on all their templates."""

    variants: dict[str, Synthesized]
    lint_output: str
    lint_returncode: int


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """Every variant synthesized in one app, cdk-nag per stack, cfn-lint once over all templates."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    # As the CDK CLI does: asset paths in the template metadata (`sam local invoke` reads them).
    # The pinned variant's availability zones, as `cdk synth` with credentials caches them in cdk.context.json.
    zones = {"availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a", "eu-west-1b", "eu-west-1c"]}
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True, **zones, **CDK_JSON_CONTEXT})
    stacks = {
        name: add_stack(app, {**CDK_JSON_CONTEXT, **context}, construct_id=f"Variant-{name}")
        for name, context in VARIANTS.items()
    }
    nag = {name: findings(stack) for name, stack in stacks.items()}
    assembly = app.synth()
    variants = {}
    for name, stack in stacks.items():
        path = Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path)
        document = json.loads(path.read_text())
        variants[name] = Synthesized(
            name=name,
            context={**CDK_JSON_CONTEXT, **VARIANTS[name]},
            stack=stack,
            template=Template.from_json(document),
            json=document,
            outdir=outdir,
            template_path=path,
            nag_findings=nag[name],
        )
    # W3005 (DependsOn already implied by GetAtt) is how CDK orders a VPC function after its role's
    # policies; W3010 (literal availability zones) is what a stack pinned to a region synthesizes from
    # its looked-up zones. Both harmless and CDK's, not ours to change.
    ignored = ["--ignore-checks", "W3005", "W3010"]
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--regions", *LINT_REGIONS, *ignored]
    lint = subprocess.run(
        [*command, "--", *(str(v.template_path) for v in variants.values())],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Assembly(variants=variants, lint_output=lint.stdout + lint.stderr, lint_returncode=lint.returncode)


@pytest.fixture(scope="session")
def synthesized(assembly: Assembly) -> Synthesized:
    """The stack with default context (the dev stage)."""
    return assembly.variants["default"]


@pytest.fixture(params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, assembly: Assembly) -> Synthesized:
    """Each supported context variant in turn (synthesized once per session)."""
    return assembly.variants[request.param]


def _test_role(database_url: str, kind: str) -> Iterator[str]:
    """A database role name unique to this test (roles are server-wide), dropped afterwards."""
    name = f"ta_{kind}_{uuid.uuid4().hex[:8]}"
    yield name
    connection = DatabaseSettings.from_url(database_url).connect()
    try:
        if connection.run("SELECT 1 FROM pg_roles WHERE rolname = :n", n=name):
            connection.run(f'DROP OWNED BY "{name}"')
            connection.run(f'DROP ROLE "{name}"')
    finally:
        connection.close()


@pytest.fixture
def app_user(database_url: str) -> Iterator[str]:
    """The application's role, as the migration creates it, for this test only."""
    yield from _test_role(database_url, "app")


@pytest.fixture
def reader_user(database_url: str) -> Iterator[str]:
    """The health function's read-only role, as the migration creates it, for this test only."""
    yield from _test_role(database_url, "reader")
