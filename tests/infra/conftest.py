"""One synthesis of the CDK app per test session, shared by every template test (a synth takes seconds)."""

from __future__ import annotations

import os

# jsii prints a banner on every start under Node 20; the CDK works, and the banner hides test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.nag import findings
from infra.settings import load_settings
from infra.stack import STACK_NAME, TelemetryAdapterStack

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"


@dataclass(frozen=True)
class Synthesized:
    """The synthesized stack: its template (as assertions and as JSON), the cloud assembly folder."""

    stack: TelemetryAdapterStack
    template: Template
    json: dict[str, Any]
    outdir: Path
    nag_findings: list[str]

    @property
    def resources(self) -> dict[str, Any]:
        """Resources by logical id."""
        resources: dict[str, Any] = self.json["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, Any]:
        """Resources of one CloudFormation type, by logical id."""
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app with default context, synthesized once, plus its cdk-nag findings."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    # As the CDK CLI does: asset paths in the template metadata (`sam local invoke` reads them).
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    stack = TelemetryAdapterStack(app, STACK_NAME, settings=load_settings({}))
    nag = findings(stack)
    app.synth()
    document = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    return Synthesized(
        stack=stack,
        template=Template.from_json(document),
        json=document,
        outdir=outdir,
        nag_findings=nag,
    )
