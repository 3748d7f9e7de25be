"""The Lambda handler driven with payload-2.0 events against the registry on the moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

from model_registry import aws
from model_registry.examples import ExampleModel
from model_registry.service import RegistryService
from model_registry.settings import Settings
from tests.handler_support import call, handler_env, load_handler

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(moto_url: str, examples: dict[str, ExampleModel]) -> Settings:
    from tests.helpers import create_registry

    settings = Settings(
        table_name="handler-registry",
        bucket_name="handler-artifacts",
        region="us-east-1",
        endpoint_url=moto_url,
    )
    create_registry(settings)
    service = RegistryService.from_settings(settings)
    for example in examples.values():
        service.register(example.name, example.artifact, feature_names=example.feature_names, progress=False)
    service.register(
        "iris",
        examples["iris"].artifact,
        feature_names=examples["iris"].feature_names,
        description="v2",
        progress=False,
    )
    return settings


@pytest.fixture(scope="module")
def handlers(registry: Settings) -> Iterator[dict[str, ModuleType]]:
    saved = dict(os.environ)
    modules = {}
    for name, pin in (("iris", "1"), ("breast-cancer", "latest"), ("diabetes", "latest")):
        modules[name] = load_handler(registry, name, pin)
    yield modules
    os.environ.clear()
    os.environ.update(saved)
    aws.reset()


def _json(result) -> dict:
    return json.loads(result.body)


@pytest.mark.parametrize("name", ["iris", "breast-cancer", "diabetes"])
def test_predictions_equal_the_model(handlers, examples, name: str) -> None:
    example = examples[name]
    rows = example.X_test[:25]
    result = call(
        handlers[name],
        "POST",
        f"/models/{name}/predict",
        {"instances": rows.tolist(), "return_probabilities": hasattr(example.estimator, "predict_proba")},
    )
    assert result.status == 200, result.body
    body = _json(result)
    np.testing.assert_array_equal(np.asarray(body["predictions"]), example.estimator.predict(rows))
    if hasattr(example.estimator, "predict_proba"):
        np.testing.assert_allclose(body["probabilities"], example.estimator.predict_proba(rows), rtol=1e-6)
    assert body["model_name"] == name and result.headers["X-Model-Version"] == body["model_version"]


def test_body_styles_agree(handlers, examples) -> None:
    iris = examples["iris"]
    rows = iris.X_test[:5]
    names = iris.feature_names
    expected = iris.estimator.predict(rows).tolist()
    styles = [
        {"instances": rows.tolist()},
        {"instances": [dict(zip(names, r, strict=True)) for r in rows.tolist()]},
        {"inputs": {n: rows[:, i].tolist() for i, n in enumerate(names)}},
    ]
    for payload in styles:
        result = call(handlers["iris"], "POST", "/models/iris/predict", payload)
        assert _json(result)["predictions"] == expected, payload


def test_pinned_and_explicit_versions(handlers, examples) -> None:
    pinned = call(
        handlers["iris"], "POST", "/models/iris/predict", {"instances": examples["iris"].X_test[:1].tolist()}
    )
    assert _json(pinned)["model_version"] == "1"
    explicit = call(
        handlers["iris"],
        "POST",
        "/models/iris/versions/2/predict",
        {"instances": examples["iris"].X_test[:1].tolist()},
    )
    assert explicit.status == 200 and _json(explicit)["model_version"] == "2"


def test_metadata_routes(handlers) -> None:
    meta = _json(call(handlers["iris"], "GET", "/models/iris"))
    assert meta["served_version"] == "1" and [v["version"] for v in meta["versions"]] == ["2", "1"]
    assert meta["signature"]["n_features"] == 4
    version = _json(call(handlers["iris"], "GET", "/models/iris/versions/2"))
    assert version["description"] == "v2"
    v2 = _json(call(handlers["breast-cancer"], "GET", "/v2/models/breast-cancer"))
    assert v2["name"] == "breast-cancer" and v2["inputs"][0]["shape"] == [-1, 30]
    ready = call(handlers["iris"], "GET", "/v2/models/iris/ready")
    assert ready.status == 200 and _json(ready)["ready"] is True
    assert call(handlers["iris"], "GET", "/v2/models/iris/versions/2/ready").status == 200


def test_v2_json_infer(handlers, examples) -> None:
    example = examples["breast-cancer"]
    rows = example.X_test[:7]
    request = {
        "id": "req-1",
        "inputs": [
            {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}
        ],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    result = call(handlers["breast-cancer"], "POST", "/v2/models/breast-cancer/infer", request)
    assert result.status == 200, result.body
    body = _json(result)
    assert body["id"] == "req-1" and body["model_name"] == "breast-cancer"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["data"] == example.estimator.predict(rows).tolist()
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])
    np.testing.assert_allclose(proba, example.estimator.predict_proba(rows), rtol=1e-6)


def test_v2_binary_extension(handlers, examples) -> None:
    example = examples["diabetes"]
    rows = example.X_test[:4].astype(np.float32)
    blob = rows.tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": list(rows.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    ).encode()
    result = call(
        handlers["diabetes"],
        "POST",
        "/v2/models/diabetes/infer",
        raw=header + blob,
        headers={
            "content-type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(header)),
        },
    )
    assert result.status == 200, result.body
    length = int(result.headers["Inference-Header-Content-Length"])
    document = json.loads(result.body[:length])
    output = document["outputs"][0]
    values = np.frombuffer(result.body[length:], dtype="<f8")
    assert output["parameters"]["binary_data_size"] == values.nbytes
    np.testing.assert_allclose(values, example.estimator.predict(rows.astype(np.float64)), rtol=1e-6)


BAD = [
    ("broken json", "POST", "/models/iris/predict", b"{not json", {}, 400, "invalid_json"),
    ("empty body", "POST", "/models/iris/predict", b"", {}, 400, "empty_body"),
    ("no instances", "POST", "/models/iris/predict", b'{"rows": []}', {}, 400, "malformed"),
    (
        "wrong type",
        "POST",
        "/models/iris/predict",
        b"a=1",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    ("deep nesting", "POST", "/models/iris/predict", b"[" * 100000 + b"]" * 100000, {}, 400, "invalid_json"),
    (
        "strings",
        "POST",
        "/models/iris/predict",
        b'{"instances": [["a", "b", "c", "d"]]}',
        {},
        422,
        "non_numeric",
    ),
    (
        "numeric strings",
        "POST",
        "/models/iris/predict",
        b'{"instances": [["1", "2", "3", "4"]]}',
        {},
        422,
        "non_numeric",
    ),
    ("nan", "POST", "/models/iris/predict", b'{"instances": [[NaN, 1, 2, 3]]}', {}, 422, "non_finite"),
    ("infinity", "POST", "/models/iris/predict", b'{"instances": [[1e999, 1, 2, 3]]}', {}, 422, "non_finite"),
    (
        "huge int",
        "POST",
        "/models/iris/predict",
        b'{"instances": [[' + b"9" * 400 + b", 1, 2, 3]]}",
        {},
        422,
        None,
    ),
    (
        "wrong count",
        "POST",
        "/models/iris/predict",
        b'{"instances": [[1, 2, 3]]}',
        {},
        422,
        "wrong_feature_count",
    ),
    ("ragged", "POST", "/models/iris/predict", b'{"instances": [[1, 2, 3, 4], [1]]}', {}, 422, "wrong_shape"),
    ("wrong names", "POST", "/models/iris/predict", b'{"instances": [{"a": 1}]}', {}, 422, "wrong_features"),
    ("empty batch", "POST", "/models/iris/predict", b'{"instances": []}', {}, 422, "empty_batch"),
    (
        "big batch",
        "POST",
        "/models/iris/predict",
        json.dumps({"instances": [[1, 2, 3, 4]] * 1001}).encode(),
        {},
        413,
        "batch_too_large",
    ),
    (
        "huge body",
        "POST",
        "/models/iris/predict",
        b'{"instances": [' + b"[1,2,3,4]," * 600000 + b"[1,2,3,4]]}",
        {},
        413,
        "body_too_large",
    ),
    (
        "unknown model",
        "POST",
        "/models/other/predict",
        b'{"instances": [[1, 2, 3, 4]]}',
        {},
        404,
        "model_not_found",
    ),
    (
        "unknown version",
        "POST",
        "/models/iris/versions/99/predict",
        b'{"instances": [[1, 2, 3, 4]]}',
        {},
        404,
        "version_not_found",
    ),
    (
        "bad version",
        "POST",
        "/models/iris/versions/abc/predict",
        b'{"instances": [[1, 2, 3, 4]]}',
        {},
        404,
        "version_not_found",
    ),
    ("wrong method", "GET", "/models/iris/predict", b"", {}, 405, "method_not_allowed"),
    ("unknown route", "POST", "/models/iris/explain", b"{}", {}, 404, "route_not_found"),
    (
        "v2 bytes",
        "POST",
        "/v2/models/iris/infer",
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}',
        {},
        422,
        "unsupported_datatype",
    ),
    (
        "v2 bad shape",
        "POST",
        "/v2/models/iris/infer",
        b'{"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3]}]}',
        {},
        422,
        "wrong_shape",
    ),
    ("v2 no inputs", "POST", "/v2/models/iris/infer", b'{"inputs": []}', {}, 400, "malformed"),
    (
        "v2 unknown output",
        "POST",
        "/v2/models/diabetes/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 10], "datatype": "FP64", "data": [0,0,0,0,0,0,0,0,0,0]}],'
        b' "outputs": [{"name": "predict_proba"}]}',
        {},
        422,
        "unknown_output",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_requests_get_documented_errors(handlers, case) -> None:
    _, method, path, raw, headers, status, code = case
    model = path.split("/")[3] if path.startswith("/v2/") else path.split("/")[2]
    handler = handlers.get(model, handlers["iris"])
    result = call(handler, method, path, raw=raw, headers=headers)
    assert result.status == status, result.body[:300]
    body = json.loads(result.body)
    assert set(body) >= {"error", "code"} and body["error"]
    if code:
        assert body["code"] == code
    # the environment still serves afterwards
    ok = call(handlers["iris"], "POST", "/models/iris/predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert ok.status == 200


@pytest.mark.parametrize("name", ["iris", "breast-cancer", "diabetes"])
@pytest.mark.parametrize(
    "body",
    [
        {"instances": "rows"},  # valid shape: replaced by real rows below
        {"instances": "rows", "return_probabilities": True},
        {"instances": [[1.0]]},  # wrong feature count: the fast path hands it to the resolver
        "not json",
    ],
)
def test_hot_route_answers_exactly_as_the_resolver(handlers, examples, name: str, body) -> None:
    from model_registry.local.events import LambdaContext, build_event
    from tests.handler_support import route_key_for

    handler = handlers[name]
    if isinstance(body, dict) and body["instances"] == "rows":
        body = {**body, "instances": examples[name].X_test[:3].tolist()}
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    path = f"/models/{name}/predict"
    route_key, params = route_key_for(name, path, "POST")
    event = build_event(
        method="POST",
        path=path,
        route_key=route_key,
        path_parameters=params,
        headers={"content-type": "application/json"},
        body=raw,
    )
    context = LambdaContext(
        f"mlp-{name}", "1", f"arn:aws:lambda:us-east-1:1:function:mlp-{name}:live", 1024, 30
    )
    through_resolver = handler.app.resolve(event, context)
    handler.metrics.clear_metrics()
    # every request the resolver answers 200 takes the hot route; every other one falls through to it
    assert (handler._predict_fast(event) is not None) == (through_resolver["statusCode"] == 200)
    handler.metrics.clear_metrics()
    assert handler.lambda_handler(event, context) == through_resolver


_GC_PROBE = """
import gc, json, sys
before = gc.get_stats()[2]["collections"]
import functions.handler as h
after = gc.get_stats()[2]["collections"]
print(json.dumps({"loaded": h.SERVER.pinned is not None, "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "gen2_during_init": after - before}))
"""


@pytest.mark.parametrize("model", ["iris", "no-such-model"])
def test_init_pauses_the_collector_then_freezes_and_restores_it(registry: Settings, model: str) -> None:
    """A fresh process: no full collection runs during init, and the collector is back on afterwards."""
    env = {**os.environ, **handler_env(registry, model, "1")}
    result = subprocess.run(
        [sys.executable, "-c", _GC_PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["loaded"] is (model != "no-such-model")  # the failed init path restores the collector too
    assert probe["enabled"] is True
    assert probe["gen2_during_init"] == 0
    assert probe["frozen"] > 10_000  # modules, classes and (when loaded) the model are frozen
