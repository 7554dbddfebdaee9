"""The quarantine's S3 client, and the operators' tool's, call S3 at its regional name in every region,
us-east-1 included: the VPC's S3 interface endpoint answers only for the regional names (botocore's
endpoint resolution, stopped before anything is sent)."""

from __future__ import annotations

from typing import Any

import pytest

from ops.target import Target
from telemetry_adapter.quarantine import s3_client


class Stopped(Exception):
    """Raised instead of sending: carries the URL the request would have gone to."""


def put_url(client: Any) -> str:
    def stop(request: Any, **_: Any) -> None:
        raise Stopped(request.url.split("?")[0])

    client.meta.events.register("before-send", stop)
    with pytest.raises(Stopped) as stopped:
        client.put_object(Bucket="telemetry-adapter-prod-quarantine-1a2b3c4d", Key="rejected/x", Body=b"x")
    return str(stopped.value)


@pytest.fixture
def region(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    name: str = request.param
    monkeypatch.setenv("AWS_REGION", name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", name)
    return name


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"], indirect=True)
def test_the_quarantine_writes_to_the_regional_name(region: str) -> None:
    assert (
        put_url(s3_client())
        == f"https://telemetry-adapter-prod-quarantine-1a2b3c4d.s3.{region}.amazonaws.com/rejected/x"
    )


@pytest.mark.parametrize("region", ["us-east-1"], indirect=True)
def test_the_operators_tool_reads_from_the_regional_name(region: str) -> None:
    url = put_url(Target(region=region).client("s3"))
    assert url.startswith(f"https://telemetry-adapter-prod-quarantine-1a2b3c4d.s3.{region}.amazonaws.com/")
