"""The resource-based policy check the local data plane applies before API Gateway invokes a function,
against policies as moto's Lambda writes them for the permissions Terraform adds."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_platform.aws_rules.resource_policy import allows_invoke
from tests.helpers import LAMBDA_TRUST_POLICY

API = "arn:aws:execute-api:us-east-1:123456789012:abc123"
SOURCE = f"{API}/$default/POST/models/iris/predict"
ACCOUNT = "123456789012"


@pytest.fixture
def lam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A function with a live alias in in-process moto."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        client = boto3.client("lambda", region_name="us-east-1")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"]["Arn"]
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
        client.create_function(
            FunctionName="mlp-iris",
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": package.getvalue()},
            Publish=True,
        )
        client.create_alias(FunctionName="mlp-iris", Name="live", FunctionVersion="1")
        yield client


def _policy(lam: Any, principal: str = "apigateway.amazonaws.com", **permission: str) -> dict:
    lam.add_permission(
        FunctionName="mlp-iris",
        StatementId="apigateway",
        Action="lambda:InvokeFunction",
        Principal=principal,
        **permission,
    )
    return json.loads(lam.get_policy(FunctionName="mlp-iris", Qualifier="live")["Policy"])


def test_terraforms_permission_allows_the_alias_from_its_api_only(lam: Any) -> None:
    policy = _policy(lam, Qualifier="live", SourceArn=f"{API}/*/*")  # what terraform/modules/api writes
    assert allows_invoke(policy, "mlp-iris", "live", SOURCE, ACCOUNT)
    assert not allows_invoke(policy, "mlp-iris", None, SOURCE, ACCOUNT)  # the unqualified function
    other_api = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:zzz999/$default/POST/models/iris/predict"
    assert not allows_invoke(policy, "mlp-iris", "live", other_api, ACCOUNT)


def test_no_policy_or_another_principal_is_a_refusal(lam: Any) -> None:
    assert not allows_invoke({}, "mlp-iris", "live", SOURCE, ACCOUNT)
    policy = _policy(lam, principal="events.amazonaws.com", Qualifier="live")
    assert not allows_invoke(policy, "mlp-iris", "live", SOURCE, ACCOUNT)


def test_an_unknown_condition_fails_closed_and_a_deny_wins() -> None:
    allow = {
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mlp-iris:live",
    }
    unknown = {**allow, "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}
    assert allows_invoke({"Statement": [allow]}, "mlp-iris", "live", SOURCE, ACCOUNT)
    assert not allows_invoke({"Statement": [unknown]}, "mlp-iris", "live", SOURCE, ACCOUNT)
    deny = {**allow, "Effect": "Deny"}
    assert not allows_invoke({"Statement": [allow, deny]}, "mlp-iris", "live", SOURCE, ACCOUNT)
