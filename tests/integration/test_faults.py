"""Faults: the registry unreachable at cold start and at warm time, and interrupted registrations."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator

import pytest

from examples.models import ExampleModel
from local_platform.emulator import Emulator, create_registry, free_port
from model_registry.core import aws, contract
from model_registry.core.settings import Settings
from model_registry.registry.artifacts import sha256_file
from model_registry.registry.service import RegistryService
from model_registry.serving.server import LOAD_RETRY_INTERVAL_S
from tests.handler_support import call, load_handler

pytestmark = pytest.mark.integration
ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture
def clean_env() -> Iterator[None]:
    with aws.environment({}):
        yield


def _register(settings: Settings, examples: dict[str, ExampleModel]) -> None:
    create_registry(settings)
    example = examples["iris"]
    RegistryService.from_settings(settings).register(
        "iris", example.artifact, feature_names=example.feature_names, progress=False
    )


def test_cold_start_without_registry_answers_503_then_recovers(examples, clean_env) -> None:
    port = free_port()
    settings = Settings(
        table_name="fault-registry",
        bucket_name="fault-artifacts",
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
    )
    handler = load_handler(settings, "iris", "1")  # nothing listens on the port: init cannot load the model
    assert handler.SERVER.pinned is None
    down = call(handler, "POST", "/models/iris/predict", ROW)
    assert down.status == 503 and down.headers.get("Retry-After")
    body = json.loads(down.body)
    assert body["code"] == "dependency_unavailable" and "retry" in body
    assert call(handler, "GET", "/v2/models/iris/ready").status == 503
    with Emulator(port):
        _register(settings, examples)
        # Within LOAD_RETRY_INTERVAL_S of the last failure requests still get 503 at once; then it loads.
        deadline = time.monotonic() + LOAD_RETRY_INTERVAL_S + 10
        while (up := call(handler, "POST", "/models/iris/predict", ROW)).status == 503:
            assert time.monotonic() < deadline, up.body
            time.sleep(0.2)
        assert up.status == 200, up.body
        assert (
            json.loads(up.body)["predictions"]
            == examples["iris"].estimator.predict([ROW["instances"][0]]).tolist()
        )


def test_warm_environment_keeps_serving_when_the_registry_goes_away(examples, clean_env) -> None:
    port = free_port()
    settings = Settings(
        table_name="warm-registry",
        bucket_name="warm-artifacts",
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
    )
    with Emulator(port):
        _register(settings, examples)
        handler = load_handler(settings, "iris", "1")
        assert call(handler, "POST", "/models/iris/predict", ROW).status == 200
    # the emulator is gone: the pinned model is in memory and no AWS call happens per request
    for _ in range(20):
        assert call(handler, "POST", "/models/iris/predict", ROW).status == 200
    other = call(handler, "POST", "/models/iris/versions/2/predict", ROW)  # needs the registry
    assert other.status == 503


def test_missing_registry_table_at_cold_start_is_a_503_until_it_exists(
    examples, clean_env, moto_url: str
) -> None:
    settings = Settings(
        table_name="missing-table", bucket_name="missing-bucket", region="us-east-1", endpoint_url=moto_url
    )
    handler = load_handler(settings, "iris", "1")  # the table does not exist: ResourceNotFound -> unavailable
    response = call(handler, "POST", "/models/iris/predict", ROW)
    assert response.status == 503 and response.headers["Retry-After"]
    assert json.loads(response.body)["code"] == "dependency_unavailable"
    _register(settings, examples)  # terraform applied late: the same environment recovers by itself
    time.sleep(LOAD_RETRY_INTERVAL_S)
    assert call(handler, "POST", "/models/iris/predict", ROW).status == 200


def test_missing_artifact_at_cold_start_is_a_503_then_recovers(examples, clean_env, server_settings) -> None:
    example = examples["iris"]
    service = RegistryService.from_settings(server_settings)
    record = service.register("iris", example.artifact, feature_names=example.feature_names, progress=False)
    s3 = aws.client_for("s3", server_settings)
    saved = s3.get_object(Bucket=server_settings.bucket_name, Key=record.s3_key)["Body"].read()
    s3.delete_object(Bucket=server_settings.bucket_name, Key=record.s3_key)
    handler = load_handler(server_settings, "iris", "1")
    missing = call(handler, "POST", "/models/iris/predict", ROW)
    assert missing.status == 503 and json.loads(missing.body)["code"] == "dependency_unavailable"
    assert "missing" in json.loads(missing.body)["error"]
    s3.put_object(Bucket=server_settings.bucket_name, Key=record.s3_key, Body=saved)  # restored
    time.sleep(LOAD_RETRY_INTERVAL_S)
    assert call(handler, "POST", "/models/iris/predict", ROW).status == 200


def test_interrupted_registration_leaves_nothing_visible_and_can_be_retried(
    examples, server_settings
) -> None:
    service = RegistryService.from_settings(server_settings)
    artifact = examples["iris"].artifact
    # The upload happens, then the process dies before the registry write (the only other step).
    service.artifacts.upload("iris", artifact, sha256_file(artifact), "skops", progress=False)
    assert service.store.list_models() == []
    record = service.register("iris", artifact, progress=False)  # the retry
    assert record.version == 1 and [r.version for r in service.store.list_versions("iris")] == [1]


def _emf_documents(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_every_server_error_of_a_version_is_counted_under_its_versions(examples, clean_env, capsys) -> None:
    """A 503 before any model loaded is a server error of this function version and of the model version
    it pins: the rollout gate counts it (real-AWS review #16). Its dimensions are the contract's."""
    port = free_port()
    settings = Settings(
        table_name="gate-registry",
        bucket_name="gate-artifacts",
        region="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
    )
    os.environ["AWS_LAMBDA_FUNCTION_VERSION"] = "7"
    handler = load_handler(settings, "iris", "3")  # nothing answers: init cannot load model version 3
    capsys.readouterr()
    assert call(handler, "POST", "/models/iris/predict", ROW).status == 503
    counted = [doc for doc in _emf_documents(capsys.readouterr().out) if contract.SERVER_ERRORS_METRIC in doc]
    assert len(counted) == 1
    (directive,) = counted[0]["_aws"]["CloudWatchMetrics"]
    assert set(directive["Dimensions"][0]) == set(contract.VERSION_DIMENSIONS)
    assert {name: counted[0][name] for name in contract.VERSION_DIMENSIONS} == contract.version_dimensions(
        "iris", "3", "7"
    )


def test_refusals_are_answered_without_a_metric_per_error_code(
    examples, clean_env, capsys, caplog, moto_url
) -> None:
    """4xx answers count in Errors; their code goes to the log line, not into a metric name (each
    distinct name is a billed custom metric)."""
    settings = Settings(
        table_name="codes-registry", bucket_name="codes-artifacts", region="us-east-1", endpoint_url=moto_url
    )
    _register(settings, examples)
    handler = load_handler(settings, "iris", "1")
    capsys.readouterr()
    caplog.set_level(logging.INFO)
    assert call(handler, "POST", "/models/iris/predict", {"instances": [[1.0]]}).status == 422
    output = capsys.readouterr().out
    names = {
        m["Name"]
        for doc in _emf_documents(output)
        for d in doc["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert "Errors" in names and not any(name.startswith("Errors.") for name in names), names
    refused = [record for record in caplog.records if record.getMessage() == "request refused"]
    assert [getattr(record, "code", None) for record in refused] == ["wrong_feature_count"]
