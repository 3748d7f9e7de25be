"""The pooled tier on the local platform: models registered after the apply are served through the
pool's catch-all routes (no Terraform change), with canaries from the registry's traffic policy, the
Open Inference Protocol's server routes, and the catalog in pages; dedicated models keep their routes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import skops.io as sio
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from model_registry.core import contract
from model_registry.registry.service import RegistryService
from tests.e2e.conftest import RunningPlatform
from tests.e2e.test_rollouts_live import HEALTHY, _rollouts, progressive_under_load

pytestmark = pytest.mark.e2e
X, Y = load_wine(return_X_y=True)
POLICY_WAIT_S = 20  # the pool caches a policy for pool.policy_cache_s (5 s by default)


def _register(service: RegistryService, tmp: Path, name: str, c: float, optimize: bool = True):  # type: ignore[no-untyped-def]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(X, Y)
    path = tmp / f"{name}-{c}.skops"
    sio.dump(model, path)
    record = service.register(name, path, progress=False, optimize_rows=X if optimize else None)
    return record, model


def _versions_seen(url: str, body: dict, count: int) -> dict[str, int]:
    seen: dict[str, int] = {}
    with requests.Session() as session:
        for _ in range(count):
            response = session.post(url, json=body, timeout=30)
            assert response.status_code == 200, response.text
            version = response.headers[contract.VERSION_HEADER]
            seen[version] = seen.get(version, 0) + 1
    return seen


def _until(check, timeout_s: float = POLICY_WAIT_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the pool did not pick up the policy in time"
        time.sleep(0.5)


def test_a_model_registered_after_the_apply_is_served_by_the_pool(
    running: RunningPlatform, tmp_path: Path
) -> None:
    service = RegistryService.from_settings(running.settings)
    record, model = _register(service, tmp_path, "wine", 1.0)
    _register(service, tmp_path, "wine-native", 1.0, optimize=False)
    rows = X[::9]
    response = requests.post(
        f"{running.url}/models/wine/predict", json={"instances": rows.tolist()}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == model.predict(rows).tolist()
    assert response.headers[contract.VERSION_HEADER] == str(record.version)
    v2 = requests.post(
        f"{running.url}/v2/models/wine/infer",
        json={
            "inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}]
        },
        timeout=30,
    )
    assert v2.status_code == 200 and v2.json()["outputs"][0]["data"] == model.predict(rows).tolist()

    refused = requests.post(
        f"{running.url}/models/wine-native/predict", json={"instances": rows.tolist()}, timeout=30
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "not_poolable")
    assert "--optimize" in refused.json()["error"]
    unknown = requests.post(
        f"{running.url}/models/no-such-model/predict", json={"instances": [[1.0]]}, timeout=30
    )
    assert unknown.status_code == 404
    # LightGBM has no layer: its ONNX form is what the pool (onnx layer only) runs
    import lightgbm as lgb

    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(X, Y), 20)
    booster.save_model(str(tmp_path / "wine-lgb.txt"))
    service.register("wine-lgb", tmp_path / "wine-lgb.txt", progress=False, optimize_rows=X)
    lgb_answer = requests.post(
        f"{running.url}/models/wine-lgb/predict", json={"instances": rows.tolist()}, timeout=30
    )
    assert lgb_answer.status_code == 200, lgb_answer.text
    assert lgb_answer.json()["predictions"] == booster.predict(rows).argmax(axis=1).tolist()
    # a dedicated model's literal routes still win: its own function answers, with its pinned version
    iris = requests.get(f"{running.url}/models/iris", timeout=30)
    assert iris.status_code == 200 and iris.json()["pinned_version"] == str(running.versions["iris"])


def test_open_inference_protocol_server_routes_and_the_catalog(
    running: RunningPlatform, tmp_path: Path
) -> None:
    service = RegistryService.from_settings(running.settings)
    for name in ("cat-a", "cat-b", "cat-c"):
        _register(service, tmp_path, name, 1.0, optimize=name != "cat-b")
    assert requests.get(f"{running.url}/v2/health/live", timeout=30).json() == {"live": True}
    assert requests.get(f"{running.url}/v2/health/ready", timeout=30).json() == {"ready": True}
    server = requests.get(f"{running.url}/v2", timeout=30).json()
    assert server["name"] == contract.METRICS_SERVICE and "model_repository" in server["extensions"]
    index = requests.post(f"{running.url}/v2/repository/index", json={}, timeout=30).json()
    states = {entry["name"]: entry["state"] for entry in index}
    assert states["cat-a"] == "READY" and states["cat-b"] == "UNAVAILABLE"
    ready = requests.post(f"{running.url}/v2/repository/index", json={"ready": True}, timeout=30).json()
    assert "cat-a" in {e["name"] for e in ready} and "cat-b" not in {e["name"] for e in ready}

    names, token = [], None
    while True:
        params = {"limit": "2", **({"next_token": token} if token else {})}
        page = requests.get(f"{running.url}/models", params=params, timeout=30).json()
        assert len(page["models"]) <= 2
        names += [m["name"] for m in page["models"]]
        token = page["next_token"]
        if token is None:
            break
    assert names == sorted(names) and {"cat-a", "cat-b", "cat-c", "iris"} <= set(names)
    assert names == [m.model_name for m in service.store.list_models()]
    bad = requests.get(f"{running.url}/models", params={"limit": "0"}, timeout=30)
    assert bad.status_code == 400


def test_a_pooled_canary_splits_traffic_then_promotes_and_rolls_back(
    running: RunningPlatform, tmp_path: Path
) -> None:
    service = RegistryService.from_settings(running.settings)
    first, _ = _register(service, tmp_path, "pooled-canary", 1.0)
    second, _ = _register(service, tmp_path, "pooled-canary", 0.05)
    url = f"{running.url}/models/pooled-canary/predict"
    body = {"instances": X[:1].tolist()}
    assert _versions_seen(url, body, 5) == {str(first.version): 5}  # registering v2 moved nothing
    rollouts = _rollouts(running)
    event = rollouts.start_canary("pooled-canary", second.version, 50)
    assert (event.after.stable_version, event.after.canary_version) == (
        str(first.version),
        str(second.version),
    )
    _until(lambda: len(_versions_seen(url, body, 10)) == 2)
    seen = _versions_seen(url, body, 200)
    assert set(seen) == {"1", "2"} and 60 <= seen["2"] <= 140, seen  # 50% of 200, give or take
    rollouts.promote("pooled-canary")
    _until(lambda: _versions_seen(url, body, 10) == {"2": 10})
    rollouts.rollback("pooled-canary", reason="e2e")
    _until(lambda: _versions_seen(url, body, 10) == {"1": 10})
    status = rollouts.status("pooled-canary")
    assert [(v.role, v.model_version) for v in status.versions] == [("stable", "1")]
    assert [e["action"] for e in rollouts.journal.events("pooled-canary", limit=3)] == [
        "rollback",
        "promote",
        "rollout",
    ]
    # the pooled tier runs ONNX only: a version without it is refused before traffic moves
    native, _ = _register(service, tmp_path, "pooled-canary", 0.5, optimize=False)
    with pytest.raises(Exception, match="no ONNX form"):
        rollouts.start_canary("pooled-canary", native.version, 10)


def test_pooled_models_change_no_terraform_resource(running: RunningPlatform, tmp_path: Path) -> None:
    """Serving a model through the pool needs no apply: after registering, rolling out and calling
    pooled models, a plan proposes nothing."""
    service = RegistryService.from_settings(running.settings)
    _register(service, tmp_path, "no-apply", 1.0)
    second, _ = _register(service, tmp_path, "no-apply", 0.1)
    _rollouts(running).start_canary("no-apply", second.version, 30)
    assert requests.post(
        f"{running.url}/models/no-apply/predict", json={"instances": X[:1].tolist()}, timeout=30
    ).ok
    assert running.platform.deployment.plan() is False


def test_the_gate_of_a_pooled_canary_reads_its_per_version_metrics(
    running: RunningPlatform, tmp_path: Path
) -> None:
    """A progressive rollout of a pooled model: the pool publishes Requests, ServerErrors and Latency per
    model version while the canary runs, the gate reads them from CloudWatch and promotes it."""
    service = RegistryService.from_settings(running.settings)
    _register(service, tmp_path, "pooled-gate", 1.0)
    second, _ = _register(service, tmp_path, "pooled-gate", 0.2)
    rollouts = _rollouts(running)
    result, messages = progressive_under_load(
        running, rollouts, "pooled-gate", second.version, X[:1].tolist(), HEALTHY, interval_s=8
    )
    assert (result.outcome, result.lambda_version) == ("promoted", str(second.version))
    judged = [m for m in messages if m.startswith("  canary:")]
    assert judged and int(judged[-1].split()[1]) >= 5 and ", p99 " in judged[-1]  # the pool's own metrics
    assert service.store.summary("pooled-gate").policy.stable == second.version
