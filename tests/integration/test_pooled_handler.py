"""The handler in pooled mode, in-process against the moto server: any registered model with an ONNX
form by the path's name, the server-wide routes, and per-version metrics only while a canary runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType

import pytest
import skops.io as sio
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression

from local_platform.emulator import create_registry
from model_registry.core import aws, contract
from model_registry.core.records import TrafficPolicy
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from tests.handler_support import call, load_handler

pytestmark = pytest.mark.integration
X, Y = load_wine(return_X_y=True)


@pytest.fixture(scope="module")
def pooled(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, dict]]:
    settings = Settings(
        table_name="pool-registry", bucket_name="pool-artifacts", region="us-east-1", endpoint_url=moto_url
    )
    create_registry(settings)
    service = RegistryService.from_settings(settings)
    folder = tmp_path_factory.mktemp("pool-models")
    models = {}
    for name, c, optimize in (
        ("wine-a", 1.0, True),
        ("wine-a", 0.05, True),
        ("wine-b", 1.0, True),
        ("plain", 1.0, False),
    ):
        model = LogisticRegression(C=c, max_iter=5000).fit(X, Y)
        path = folder / f"{name}-{c}.skops"
        sio.dump(model, path)
        record = service.register(name, path, progress=False, optimize_rows=X if optimize else None)
        models[(name, record.version)] = model
    with aws.environment({}):
        handler = load_handler(
            settings, "", "latest", **{contract.ENV_POOL: "true", contract.ENV_POOL_POLICY_TTL: "0"}
        )
        yield handler, {"service": service, "models": models}


def test_any_onnx_model_is_served_by_name_and_version(pooled) -> None:  # type: ignore[no-untyped-def]
    handler, world = pooled
    rows = X[::7].tolist()
    for name, version in (("wine-a", 1), ("wine-b", 1)):
        result = call(handler, "POST", f"/models/{name}/predict", {"instances": rows})
        assert result.status == 200, result.body
        assert (
            json.loads(result.body)["predictions"]
            == world["models"][(name, version)].predict(X[::7]).tolist()
        )
    explicit = call(handler, "POST", "/models/wine-a/versions/2/predict", {"instances": rows})
    assert json.loads(explicit.body)["predictions"] == world["models"][("wine-a", 2)].predict(X[::7]).tolist()
    assert explicit.headers[contract.VERSION_HEADER] == "2"
    refused = call(handler, "POST", "/models/plain/predict", {"instances": rows})
    assert (refused.status, json.loads(refused.body)["code"]) == (422, "not_poolable")
    assert call(handler, "POST", "/models/nobody/predict", {"instances": rows}).status == 404
    metadata = call(handler, "GET", "/v2/models/wine-b")
    assert json.loads(metadata.body)["name"] == "wine-b"


def test_server_routes(pooled) -> None:  # type: ignore[no-untyped-def]
    handler, _ = pooled
    assert json.loads(call(handler, "GET", "/v2/health/live").body) == {"live": True}
    assert json.loads(call(handler, "GET", "/v2/health/ready").body) == {"ready": True}
    index = json.loads(call(handler, "POST", "/v2/repository/index", {}).body)
    assert {e["name"]: e["state"] for e in index} == {
        "plain": "UNAVAILABLE",
        "wine-a": "READY",
        "wine-b": "READY",
    }
    page = json.loads(call(handler, "GET", "/models").body)
    assert [m["name"] for m in page["models"]] == ["plain", "wine-a", "wine-b"] and page["next_token"] is None
    assert call(handler, "POST", "/v2/repository/index", {"ready": "yes"}).status == 400


def test_per_version_metrics_only_while_a_canary_runs(pooled, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    handler, world = pooled
    store = world["service"].store

    def emitted() -> list[dict]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]

    capsys.readouterr()
    call(handler, "POST", "/models/wine-b/predict", {"instances": X[:1].tolist()})
    assert not [d for d in emitted() if contract.REQUESTS_METRIC in d]  # no canary: no per-version metric
    revision = store.summary("wine-a").policy.revision
    store.set_policy("wine-a", TrafficPolicy(stable=1, canary=2, canary_weight=0.5), revision)
    for _ in range(6):
        call(handler, "POST", "/models/wine-a/predict", {"instances": X[:1].tolist()})
    counted = [d for d in emitted() if contract.REQUESTS_METRIC in d]
    assert len(counted) == 6
    assert {d["model_version"] for d in counted} <= {"1", "2"} and all(
        d["function_version"] == "pool" for d in counted
    )
    store.set_policy("wine-a", TrafficPolicy(stable=1), revision + 1)


def test_the_catalog_refuses_a_bad_page_token(pooled) -> None:  # type: ignore[no-untyped-def]
    handler, _ = pooled
    for query in ("next_token=", "next_token=..%2F", "limit=1001", "limit=x"):
        result = call(handler, "GET", f"/models?{query}")
        assert result.status == 400, (query, result.body)
    page = json.loads(call(handler, "GET", "/models?limit=1").body)
    assert len(page["models"]) == 1 and page["next_token"] == "plain"
