"""The local API Gateway serves a snapshot of the routes, as an HTTP API stage serves a deployment that
takes effect after a change (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-stages.html):
a route deleted in the emulator keeps taking requests until the next read. This is why a model leaves
its function in two applies (tooling/tier_moves.py)."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest

from local_platform import control_plane
from local_platform.control_plane import ControlPlane

TARGET = "arn:aws:lambda:us-east-1:123456789012:function:mlp-iris:live"


def test_a_deleted_route_is_served_until_the_next_read(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_plane, "ROUTES_TTL_S", 0.5)  # 2 s on the platform
    apigw = boto3.client("apigatewayv2", endpoint_url=moto_url, region_name="us-east-1")
    api_id = apigw.create_api(Name="route-snapshot", ProtocolType="HTTP")["ApiId"]
    integration = apigw.create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=TARGET, PayloadFormatVersion="2.0"
    )
    route = apigw.create_route(
        ApiId=api_id,
        RouteKey="ANY /models/iris/{proxy+}",
        Target=f"integrations/{integration['IntegrationId']}",
    )
    control = ControlPlane(
        apigw, None, None, api_id=api_id, package_bucket="", packages_dir=tmp_path, default_concurrency=10
    )
    assert [(r.route_key, r.function_name) for r in control.routes()] == [
        ("ANY /models/iris/{proxy+}", "mlp-iris")
    ]

    apigw.delete_route(ApiId=api_id, RouteId=route["RouteId"])
    assert [r.route_key for r in control.routes()] == ["ANY /models/iris/{proxy+}"]  # still in effect
    time.sleep(0.6)
    assert control.routes() == []
