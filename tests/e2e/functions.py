"""Extra Lambda functions deployed beside the platform's models, behind their own route, to show how the
local target runs code that the example models never exercise (timeouts, crashes, slow inits, layers
the runtime's OS cannot load)."""

from __future__ import annotations

import hashlib
import io
import time
import zipfile

import boto3

from model_registry.core import contract
from tests.e2e.conftest import RunningPlatform
from tests.helpers import LAMBDA_TRUST_POLICY


def add_function(
    running: RunningPlatform,
    name: str,
    source: str,
    *,
    timeout_s: int = 3,
    runtime: str = contract.DEFAULT_LAMBDA_RUNTIME,
    environment: dict[str, str] | None = None,
    layers: list[str] | None = None,
    permission: bool = True,
) -> str:
    """Create function ``name`` from ``source`` (module ``app``, handler ``app.handler``) and route
    ``ANY /<name>/{proxy+}`` to it through the platform's HTTP API, allowing API Gateway to invoke it
    (unless ``permission`` is False); return the route's base URL once the data plane serves it."""
    endpoint = running.settings.endpoint_url
    s3, lam, apigw, iam = (
        boto3.client(s, endpoint_url=endpoint) for s in ("s3", "lambda", "apigatewayv2", "iam")
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    package = buffer.getvalue()
    key = contract.deployment_key(hashlib.sha256(package).hexdigest())
    s3.put_object(Bucket=running.settings.bucket_name, Key=key, Body=package)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)
    function = lam.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"S3Bucket": running.settings.bucket_name, "S3Key": key},
        Timeout=timeout_s,
        Environment={"Variables": environment or {}},
        Layers=layers or [],
    )
    api_id = running.platform.outputs["api_id"]
    integration = apigw.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri=function["FunctionArn"],
        PayloadFormatVersion="2.0",
    )
    apigw.create_route(
        ApiId=api_id,
        RouteKey=f"ANY /{name}/{{proxy+}}",
        Target=f"integrations/{integration['IntegrationId']}",
    )
    if permission:
        allow_api_gateway(running, name)
    plane = running.platform.server.plane
    deadline = time.monotonic() + 30  # the data plane re-reads routes every 2 s
    while not any(route.function_name == name for route in plane.routes()):
        assert time.monotonic() < deadline, f"the data plane never routed /{name}"
        time.sleep(0.5)
    return f"{running.url}/{name}"


def allow_api_gateway(running: RunningPlatform, name: str) -> None:
    """The permission API Gateway needs to invoke function ``name`` from the platform's API."""
    lam = boto3.client("lambda", endpoint_url=running.settings.endpoint_url)
    api = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"].split(":")
    lam.add_permission(
        FunctionName=name,
        StatementId="apigateway",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:{api[1]}:execute-api:{api[3]}:{api[4]}:{running.platform.outputs['api_id']}/*/*",
    )
