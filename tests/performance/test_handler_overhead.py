"""Handler overhead: a warm request through the handler vs the bare model call, same rows, same process.

Run by `make bench` (pytest-benchmark); `make test` deselects the `benchmark` marker.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import pytest

from examples.models import ExampleModel
from local_platform.emulator import create_registry
from local_platform.events import LambdaContext, build_event
from model_registry.core import aws
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from tests.handler_support import load_handler, route_key_for
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.benchmark
BATCHES = (1, 10, 100)
MODELS = ("iris", "breast-cancer", "diabetes")
BENCH_DIR = REPO_ROOT / "build" / "bench"


@pytest.fixture(scope="module")
def handlers(moto_url: str, examples: dict[str, ExampleModel]) -> Iterator[dict[str, ModuleType]]:
    settings = Settings(
        table_name="bench-registry", bucket_name="bench-artifacts", region="us-east-1", endpoint_url=moto_url
    )
    create_registry(settings)
    service = RegistryService.from_settings(settings)
    for example in examples.values():
        service.register(example.name, example.artifact, feature_names=example.feature_names, progress=False)
        if example.serve_optimized:  # the same model, registered with --optimize
            service.register(
                f"{example.name}-onnx", example.artifact, optimize_rows=example.X_test, progress=False
            )
    with aws.environment({}):  # restores what load_handler sets
        modules = {name: load_handler(settings, name, "1") for name in MODELS}
        modules["diabetes-onnx"] = load_handler(settings, "diabetes-onnx", "1")
        yield modules


def _event(name: str, rows: np.ndarray) -> dict:
    path = f"/models/{name}/predict"
    route_key, params = route_key_for(name, path, "POST")
    return build_event(
        method="POST",
        path=path,
        route_key=route_key,
        path_parameters=params,
        headers={"content-type": "application/json"},
        body=json.dumps({"instances": rows.tolist()}).encode(),
    )


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("path", ["native", "onnx", "handler-onnx"])
def test_optimized(benchmark, handlers, examples, batch: int, path: str) -> None:
    """The diabetes random forest: native predict vs its ONNX form, and the handler serving the ONNX."""
    example = examples["diabetes"]
    rows = np.resize(example.X_test, (batch, example.X_test.shape[1]))
    benchmark.group = f"diabetes optimized batch {batch}"
    benchmark.extra_info.update({"model": "diabetes-onnx", "batch": batch, "path": path})
    handler = handlers["diabetes-onnx"]
    onnx_model = handler.SERVER.pinned.model
    assert onnx_model.framework == "onnx"
    expected = example.estimator.predict(rows)
    if path == "native":
        result = benchmark(example.estimator.predict, rows)
    elif path == "onnx":
        result = benchmark(onnx_model.predict, rows)
    else:
        event = _event("diabetes-onnx", rows)
        context = LambdaContext("mlp-diabetes-onnx", "1", "arn:aws:lambda:us-east-1:1:function:f", 1024, 30)
        response = benchmark(handler.lambda_handler, event, context)
        assert response["statusCode"] == 200
        result = json.loads(response["body"])["predictions"]
    np.testing.assert_allclose(result, expected, rtol=1e-5)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("path", ["bare", "handler"])
def test_overhead(benchmark, handlers, examples, name: str, batch: int, path: str) -> None:
    example = examples[name]
    rows = np.resize(example.X_test, (batch, example.X_test.shape[1]))
    benchmark.group = f"{name} batch {batch}"
    benchmark.extra_info.update({"model": name, "batch": batch, "path": path})
    if path == "bare":
        result = benchmark(example.estimator.predict, rows)  # the trained model's own predict
        assert len(result) == batch
        return
    handler = handlers[name]
    event = _event(name, rows)
    context = LambdaContext(
        f"mlp-{name}", "1", f"arn:aws:lambda:us-east-1:123456789012:function:mlp-{name}:live", 1024, 30
    )
    response = benchmark(handler.lambda_handler, event, context)
    assert response["statusCode"] == 200
    np.testing.assert_array_equal(
        json.loads(response["body"])["predictions"], example.estimator.predict(rows)
    )


PAIRED_ROUNDS = 3000
PAIRED_JSON = BENCH_DIR / "paired.json"


@pytest.mark.parametrize("name", [*MODELS, "diabetes-onnx"])
def test_paired_overhead_batch1(handlers, examples, name: str) -> None:
    """Bare call and handler call alternated in one loop, so machine noise hits both alike."""
    example = examples[name.removesuffix("-onnx")]
    rows = example.X_test[:1]
    handler = handlers[name]
    bare = handler.SERVER.pinned.model.predict if name.endswith("-onnx") else example.estimator.predict
    event = _event(name, rows)
    context = LambdaContext(f"mlp-{name}", "1", "arn:aws:lambda:us-east-1:1:function:f", 1024, 30)
    bare_s, handler_s = [], []
    for _ in range(PAIRED_ROUNDS):
        start = time.perf_counter()
        bare(rows)
        middle = time.perf_counter()
        response = handler.lambda_handler(event, context)
        handler_s.append(time.perf_counter() - middle)
        bare_s.append(middle - start)
    assert response["statusCode"] == 200
    # The handler's own work: the same requests with the model's predict answering from a cache.
    model = handler.SERVER.pinned.model
    answer = model.predict(rows)
    model.predict = lambda features: answer  # an instance attribute shadows the method
    own_s = []
    try:
        for _ in range(PAIRED_ROUNDS):
            start = time.perf_counter()
            handler.lambda_handler(event, context)
            own_s.append(time.perf_counter() - start)
    finally:
        del model.predict
    result = {
        "bare_us": statistics.median(bare_s) * 1e6,
        "handler_us": statistics.median(handler_s) * 1e6,
        # Median of the per-pair differences: drift in the model's own time cancels within each pair.
        "overhead_us": statistics.median(h - b for h, b in zip(handler_s, bare_s, strict=True)) * 1e6,
        "handler_own_us": statistics.median(own_s) * 1e6,
        "rounds": PAIRED_ROUNDS,
    }
    PAIRED_JSON.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(PAIRED_JSON.read_text()) if PAIRED_JSON.exists() else {}
    PAIRED_JSON.write_text(json.dumps({**saved, name: result}, indent=2))
