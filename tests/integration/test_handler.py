"""The Lambda handler driven with payload-2.0 events against the registry on the moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

from examples.models import ExampleModel
from model_registry.core import aws, contract
from model_registry.core.errors import RegistryError
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from model_registry.serving.codecs import V2_DTYPES
from model_registry.serving.server import LOAD_RETRY_INTERVAL_S
from tests.handler_support import call, handler_env, load_handler
from tests.helpers import REPO_ROOT, broken_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(moto_url: str, examples: dict[str, ExampleModel]) -> Settings:
    from local_platform.emulator import create_registry

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
    with aws.environment({}):  # restores what load_handler sets
        modules = {}
        for name, pin in (("iris", "1"), ("breast-cancer", "latest"), ("diabetes", "latest")):
            modules[name] = load_handler(registry, name, pin)
        yield modules


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
        # the same model, reloaded: bit-identical (JSON round-trips a float64 exactly)
        np.testing.assert_array_equal(body["probabilities"], example.estimator.predict_proba(rows))
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
    np.testing.assert_array_equal(proba, example.estimator.predict_proba(rows))


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


def test_v2_one_tensor_per_feature_and_the_default_binary_output(handlers, examples) -> None:
    """Tensors named by the model's features (one column each), and ``binary_data_output`` on the
    request making every output binary when no output is listed."""
    example = examples["iris"]
    rows = example.X_test[:5]
    tensors = [
        {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, i].tolist()}
        for i, name in enumerate(example.feature_names)
    ]
    result = call(handlers["iris"], "POST", "/v2/models/iris/infer", {"inputs": tensors[::-1]})  # any order
    assert result.status == 200, result.body
    (output,) = _json(result)["outputs"]
    assert output["name"] == "predict" and output["data"] == example.estimator.predict(rows).tolist()

    binary = call(
        handlers["iris"],
        "POST",
        "/v2/models/iris/infer",
        {"inputs": tensors, "parameters": {"binary_data_output": True}},
    )
    assert binary.status == 200, binary.body
    length = int(binary.headers["Inference-Header-Content-Length"])
    (output,) = json.loads(binary.body[:length])["outputs"]
    assert "data" not in output and output["parameters"]["binary_data_size"] == len(binary.body) - length
    dtype = V2_DTYPES[output["datatype"]].newbyteorder("<")
    assert (
        np.frombuffer(binary.body[length:], dtype=dtype).tolist() == example.estimator.predict(rows).tolist()
    )

    renamed = [{**tensors[0], "name": "not-a-feature"}, *tensors[1:]]
    refused = call(handlers["iris"], "POST", "/v2/models/iris/infer", {"inputs": renamed})
    assert refused.status == 422 and _json(refused)["code"] == "wrong_features"


def test_explicit_versions_are_cached_up_to_the_cache_size(registry: Settings, examples) -> None:
    """``MODEL_CACHE_SIZE`` explicit versions stay loaded besides the pinned one; the least recently
    used is evicted, and loads again (from the registry) when asked for."""
    with aws.environment({}):  # restores what load_handler sets
        handler = load_handler(registry, "iris", "2", MODEL_CACHE_SIZE="1")
        row = {"instances": examples["iris"].X_test[:1].tolist()}
        loads: list[int] = []
        real_load = handler.SERVER.service.load

        def counting_load(name: str, version: int):  # the real load, counted
            loads.append(version)
            return real_load(name, version)

        handler.SERVER.service.load = counting_load
        for version in ("1", "1", "2", "1"):  # 2 is the pinned version: never cached, never reloaded
            result = call(handler, "POST", f"/models/iris/versions/{version}/predict", row)
            assert result.status == 200 and result.headers["X-Model-Version"] == version
        assert loads == [1]
        assert list(handler.SERVER._cache) == [1]
        handler.SERVER._cache.clear()  # as if another version had evicted it
        assert call(handler, "POST", "/models/iris/versions/1/predict", row).status == 200
        assert loads == [1, 1]


@pytest.mark.parametrize("pin", ["three", "0", "-1"])
def test_an_invalid_model_version_pin_answers_every_request_instead_of_failing_the_import(
    registry: Settings, pin: str, capsys
) -> None:
    with aws.environment({}):  # restores what load_handler sets
        handler = load_handler(registry, "iris", pin)  # the import itself must not raise
        assert handler.SERVER.pinned is None
        for path in ("/models/iris/predict", "/models/iris/versions/1/predict", "/v2/models/iris/infer"):
            capsys.readouterr()
            body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
            result = call(handler, "POST", path, body if "/v2/" in path else {"instances": [[1, 2, 3, 4]]})
            assert result.status == 500 and _json(result)["code"] == "misconfigured", result.body
            assert "MODEL_VERSION" in _json(result)["error"]
            assert contract.SERVER_ERRORS_METRIC in capsys.readouterr().out  # the gate counts it


def test_a_pickled_model_is_served_only_where_pickle_is_allowed(
    registry: Settings, examples, tmp_path
) -> None:
    """A joblib artifact registered where pickle is allowed: a function without MODEL_ALLOW_PICKLE answers
    403 pickle_not_allowed on every request (no retry can help), one with it serves the model."""
    import joblib

    example = examples["iris"]
    artifact = tmp_path / "iris.joblib"
    joblib.dump(example.estimator, artifact)
    allowed = Settings(**{**vars(registry), "allow_pickle": True})
    RegistryService.from_settings(allowed).register(
        "pickled", artifact, feature_names=example.feature_names, progress=False
    )
    rows = example.X_test[:3]
    with aws.environment({}):  # restores what load_handler sets
        refusing = load_handler(registry, "pickled", "1")
        for pause in (0, LOAD_RETRY_INTERVAL_S):  # at once, and once the load would be retried
            time.sleep(pause)
            result = call(refusing, "POST", "/models/pickled/predict", {"instances": rows.tolist()})
            assert result.status == 403 and _json(result)["code"] == "pickle_not_allowed", result.body
        serving = load_handler(registry, "pickled", "1", **{contract.ENV_ALLOW_PICKLE: "true"})
        result = call(serving, "POST", "/models/pickled/predict", {"instances": rows.tolist()})
        assert (
            result.status == 200 and _json(result)["predictions"] == example.estimator.predict(rows).tolist()
        )


_TRACE_PROBE = """
import json
import functions.handler as h
from tests.handler_support import call
result = call(h, "POST", "/models/iris/predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
print(json.dumps({"status": result.status, "traced": h.tracer is not None and not h.tracer.disabled}))
"""


def test_tracing_sends_the_model_load_and_the_aws_calls_to_the_xray_daemon(registry: Settings) -> None:
    """Terraform turns X-Ray tracing on (mode Active): the handler then traces its model load, and the
    X-Ray SDK sends the subsegments over UDP to the daemon Lambda runs beside the function. A UDP socket
    stands in for the daemon; the trace header is the one Lambda sets for a sampled request. In its own
    process, since the SDK patches botocore for good."""
    import socket

    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    env = {
        **os.environ,
        **handler_env(registry, "iris", "1"),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        "LAMBDA_TASK_ROOT": str(REPO_ROOT),
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    }
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _TRACE_PROBE],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert probe.returncode == 0, probe.stderr[-2000:]
        assert json.loads(probe.stdout.strip().splitlines()[-1]) == {"status": 200, "traced": True}
        names: set[str] = set()
        while not {"load_model", "dynamodb", "s3"} <= names:
            try:  # each datagram: a header line, then the subsegment's JSON document
                datagram = daemon.recv(65536).decode()
            except TimeoutError:
                raise AssertionError(f"the daemon received only {sorted(names)}") from None
            names.add(json.loads(datagram.split("\n", 1)[1]).get("name", ""))
    finally:
        daemon.close()


def test_the_before_snapshot_hook_refuses_a_snapshot_without_its_pinned_model(registry: Settings) -> None:
    """SnapStart: a failing hook fails the snapshot, so a version pinned to a model it cannot load never
    goes Active; Terraform's version pinned to ``latest`` before any registration snapshots without one."""
    with aws.environment({}):  # restores what load_handler sets
        missing = load_handler(registry, "iris", "99")  # not registered: init could not load it
        assert missing.SERVER.pinned is None
        with pytest.raises(RegistryError):
            missing.before_snapshot()
        unregistered = load_handler(registry, "not-registered-yet", "latest")
        unregistered.before_snapshot()  # tolerated: the first rollout publishes the real version
        assert unregistered.SERVER.pinned is None
        loaded = load_handler(registry, "iris", "1")
        loaded.before_snapshot()
        assert loaded.SERVER.pinned is not None and loaded.SERVER.pinned.version == 1


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
        "non_finite",
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
        "probabilities of a regressor",
        "POST",
        "/models/diabetes/predict",
        b'{"instances": [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], "return_probabilities": true}',
        {},
        422,
        "no_probabilities",
    ),
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
    from local_platform.events import LambdaContext, build_event
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
    assert (handler.predict_fast(event) is not None) == (through_resolver["statusCode"] == 200)
    handler.metrics.clear_metrics()
    assert handler.lambda_handler(event, context) == through_resolver


def test_a_model_that_raises_on_valid_input_answers_prediction_failed_on_every_route(
    registry: Settings, examples: dict[str, ExampleModel], tmp_path, capsys
) -> None:
    """The hot route included: the exception becomes the documented 500 body and a counted server error
    instead of leaving lambda_handler (on Lambda: a function error, the gateway's bare 500, no metric)."""
    iris = examples["iris"]
    artifact = broken_model(iris.X_test, iris.y_test, tmp_path / "broken.skops")
    RegistryService.from_settings(registry).register(
        "broken", artifact, feature_names=iris.feature_names, progress=False
    )
    with aws.environment({}):  # restores what load_handler sets
        handler = load_handler(registry, "broken", "1")
        tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
        requests = [
            ("/models/broken/predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]}),  # the hot route
            ("/models/broken/versions/1/predict", {"instances": [[5.1, 3.5, 1.4, 0.2]]}),
            ("/v2/models/broken/infer", {"inputs": [tensor]}),
        ]
        for path, body in requests:
            capsys.readouterr()
            result = call(handler, "POST", path, body)
            assert result.status == 500, (path, result.body)
            assert _json(result) == {"error": "prediction failed: ValueError", "code": "prediction_failed"}
            emitted = capsys.readouterr().out
            assert contract.SERVER_ERRORS_METRIC in emitted, path  # the gate counts it


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
