"""Fixtures shared by the integration tests."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest

from examples.models import ExampleModel
from model_registry.core import aws, contract
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from model_registry.rollout import Rollouts
from tests.helpers import LAMBDA_TRUST_POLICY


def _function(settings: Settings, model: str) -> None:
    """A function with a live alias, as Terraform's model_endpoint module makes it."""
    lam = boto3.client("lambda", region_name=settings.region, endpoint_url=settings.endpoint_url)
    iam = boto3.client("iam", region_name=settings.region, endpoint_url=settings.endpoint_url)
    role = iam.create_role(
        RoleName=f"role-{settings.table_name}-{model}", AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    name = contract.function_name(settings.platform_name, model)
    lam.create_function(
        FunctionName=name,
        Runtime=contract.DEFAULT_LAMBDA_RUNTIME,
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": buffer.getvalue()},
        Publish=True,
        Environment={
            "Variables": {  # what Terraform sets
                contract.ENV_TABLE: settings.table_name,
                contract.ENV_BUCKET: settings.bucket_name,
                contract.ENV_MODEL_NAME: model,
                contract.ENV_PLATFORM_NAME: settings.platform_name,
                contract.ENV_MODEL_VERSION: "latest",
            }
        },
    )
    lam.create_alias(FunctionName=name, Name=contract.ALIAS_NAME, FunctionVersion="1")


@pytest.fixture
def rollouts(server_settings: Settings, examples: dict[str, ExampleModel]) -> Rollouts:
    settings = Settings(**{**vars(server_settings), "platform_name": server_settings.table_name})
    service = RegistryService.from_settings(settings)
    for _ in range(3):
        service.register("iris", examples["iris"].artifact, progress=False)
    _function(settings, "iris")
    return Rollouts(
        service,
        aws.client_for("lambda", settings),
        settings.platform_name,
        aws.client_for("cloudwatch", settings),
        actor="tester",
    )
