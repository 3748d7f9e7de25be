"""Throttling, which neither moto nor the local platform can produce, answered as 503 by the handler's
path. botocore's Stubber stands in for the throttling service; our error handling is the real code."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from model_registry.core.errors import DependencyUnavailable
from model_registry.core.settings import Settings
from model_registry.registry.artifacts import ArtifactStore
from model_registry.registry.loading import ModelSource
from model_registry.registry.store import RegistryStore
from model_registry.serving.server import ModelServer

NO_RETRIES = Config(retries={"mode": "standard", "max_attempts": 1})


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_throttled_registry_at_cold_start_is_a_503(code: str) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=NO_RETRIES)
    s3 = boto3.client("s3", region_name="us-east-1", config=NO_RETRIES)
    settings = Settings(table_name="t", bucket_name="b")
    server = ModelServer(
        ModelSource(settings, RegistryStore("t", dynamodb), ArtifactStore("b", s3)), "iris", 1
    )
    with Stubber(dynamodb) as stub:
        stub.add_client_error("get_item", service_error_code=code, http_status_code=400)
        with pytest.raises(DependencyUnavailable) as raised:
            server.load_pinned()  # what the handler's init does
        assert raised.value.status == 503 and code in raised.value.message
        with pytest.raises(DependencyUnavailable):  # a request right after: 503 without a new call
            server.get()
        stub.assert_no_pending_responses()


def test_throttled_artifact_store_is_a_503() -> None:
    s3 = boto3.client("s3", region_name="us-east-1", config=NO_RETRIES)
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(DependencyUnavailable, match="SlowDown") as raised:
            ArtifactStore("b", s3).download("models/iris/abc.skops")
    assert raised.value.status == 503


@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "KMSAccessDeniedException", "UnrecognizedClientException"]
)
def test_a_refused_registry_at_cold_start_is_a_503_not_a_crashed_init(code: str) -> None:
    """Right after an apply, the role's policy may not have propagated yet: DynamoDB or KMS deny. The
    handler's init must answer 503 and retry, not fail the import (Runtime.ImportModuleError)."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", config=NO_RETRIES)
    s3 = boto3.client("s3", region_name="us-east-1", config=NO_RETRIES)
    server = ModelServer(
        ModelSource(
            Settings(table_name="t", bucket_name="b"), RegistryStore("t", dynamodb), ArtifactStore("b", s3)
        ),
        "iris",
        1,
    )
    with Stubber(dynamodb) as stub:
        stub.add_client_error(
            "get_item", service_error_code=code, service_message="denied", http_status_code=400
        )
        with pytest.raises(DependencyUnavailable) as raised:
            server.load_pinned()
    assert (
        raised.value.status == 503 and code in raised.value.message and "permissions" in raised.value.message
    )


def test_a_missing_artifact_without_list_permission_says_what_may_have_happened() -> None:
    """S3 answers a missing object with 403 AccessDenied to a role without s3:ListBucket (the function's)."""
    s3 = boto3.client("s3", region_name="us-east-1", config=NO_RETRIES)
    store = ArtifactStore("b", s3)
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(DependencyUnavailable, match="missing, or this role may not read it"):
            store.download("models/iris/abc.skops")
