"""``--optimize``: ONNX registered next to the native artifact only when it reproduces the model."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from examples.models import ExampleModel
from model_registry.core import aws
from model_registry.core.errors import InvalidInput
from model_registry.core.settings import Settings
from model_registry.registry.optimize import OptimizationRejected
from model_registry.registry.service import RegistryService
from tests.integration.test_registry_server import _modelctl, _nothing_written

pytestmark = pytest.mark.integration


def test_random_forest_is_registered_with_a_validated_onnx_that_serves(
    server_settings: Settings, examples: dict[str, ExampleModel]
) -> None:
    example = examples["diabetes"]
    service = RegistryService.from_settings(server_settings)
    record = service.register("diabetes", example.artifact, optimize_rows=example.X_test, progress=False)
    optimized = record.optimized
    assert optimized is not None and optimized.validation_rows == len(example.X_test)
    stored = (
        aws.client_for("s3", server_settings)
        .get_object(Bucket=server_settings.bucket_name, Key=optimized.s3_key)["Body"]
        .read()
    )
    assert hashlib.sha256(stored).hexdigest() == optimized.sha256 != record.sha256
    assert service.store.get_version("diabetes", 1).optimized == optimized  # the registry has it

    _, model, _ = service.load("diabetes", 1)
    assert model.framework == "onnx"  # onnxruntime is installed here: the compiled form serves
    expected = example.estimator.predict(example.X_test)
    np.testing.assert_allclose(model.predict(example.X_test), expected, rtol=1e-5)
    # How much faster it is belongs to `make bench` (tests/performance, "diabetes optimized" groups).


def test_classifier_pipeline_keeps_exact_labels_and_close_probabilities(
    server_settings: Settings, examples: dict[str, ExampleModel]
) -> None:
    example = examples["iris"]
    service = RegistryService.from_settings(server_settings)
    service.register("iris", example.artifact, optimize_rows=example.X_test, progress=False)
    _, model, _ = service.load("iris", 1)
    assert model.framework == "onnx"
    np.testing.assert_array_equal(model.predict(example.X_test), example.estimator.predict(example.X_test))
    proba = model.predict_proba(example.X_test)
    np.testing.assert_allclose(proba, example.estimator.predict_proba(example.X_test), atol=1e-5)


def test_a_compiled_form_that_disagrees_is_refused_and_nothing_is_written(
    server_settings: Settings, tmp_path
) -> None:
    # Features near 1e7 differ in their last digits: float32 (what the ONNX graph computes in) cannot
    # tell them apart, so the compiled model's labels differ from the float64 native model's.
    rng = np.random.default_rng(0)
    X = 1e7 + rng.normal(0, 1, size=(400, 2))
    y = (X[:, 0] - 1e7 > 0).astype(int)
    model = LogisticRegression(C=1e6, max_iter=5000).fit(X - 1e7, y)
    model.intercept_ = model.intercept_ - model.coef_ @ np.array([1e7, 1e7])  # same model on raw X
    assert (model.predict(X) == y).mean() > 0.95
    path = tmp_path / "shifted.skops"
    sio.dump(model, path)
    service = RegistryService.from_settings(server_settings)
    with pytest.raises(OptimizationRejected, match="differ"):
        service.register("shifted", path, optimize_rows=X, progress=False)
    assert _nothing_written(server_settings)


def test_an_xgboost_booster_compiles_to_an_onnx_that_reproduces_it(
    server_settings: Settings, examples: dict[str, ExampleModel]
) -> None:
    """The pooled tier runs ONNX only: XGBoost models reach it through onnxmltools' converter."""
    xgb = examples["breast-cancer"]
    service = RegistryService.from_settings(server_settings)
    record = service.register("breast-cancer", xgb.artifact, optimize_rows=xgb.X_test, progress=False)
    assert record.optimized is not None and record.optimized.max_abs_diff <= 1e-5
    _, model, _ = service.load("breast-cancer", 1)
    assert model.framework == "onnx"
    np.testing.assert_array_equal(model.predict(xgb.X_test), xgb.estimator.predict(xgb.X_test))


def test_bad_validation_data_is_refused_before_any_write(
    server_settings: Settings, examples: dict[str, ExampleModel]
) -> None:
    service = RegistryService.from_settings(server_settings)
    with pytest.raises(InvalidInput, match="rows of 4 features"):
        service.register("iris", examples["iris"].artifact, optimize_rows=np.ones((3, 5)), progress=False)
    with pytest.raises(InvalidInput, match="NaN"):
        service.register(
            "iris", examples["iris"].artifact, optimize_rows=np.full((3, 4), np.nan), progress=False
        )
    assert _nothing_written(server_settings)


def test_cli_register_optimize_and_optimize_later(
    server_settings: Settings, examples: dict[str, ExampleModel], tmp_path
) -> None:
    example = examples["diabetes"]
    csv = tmp_path / "validation.csv"
    np.savetxt(csv, example.X_test, delimiter=",", header=",".join(example.feature_names), comments="")
    missing = _modelctl(server_settings, "register", "diabetes", str(example.artifact), "--optimize")
    assert missing.returncode == 1 and "--validation-data" in missing.stderr
    assert _nothing_written(server_settings)

    done = _modelctl(
        server_settings,
        "register",
        "diabetes",
        str(example.artifact),
        "--optimize",
        "--validation-data",
        str(csv),
    )
    assert done.returncode == 0, done.stderr
    assert "optimized: onnx validated on" in done.stdout and "native artifact kept" in done.stdout

    npy = tmp_path / "validation.npy"
    np.save(npy, examples["iris"].X_test)
    assert _modelctl(server_settings, "register", "iris", str(examples["iris"].artifact)).returncode == 0
    later = _modelctl(server_settings, "optimize", "iris", "1", "--validation-data", str(npy))
    assert later.returncode == 0, later.stderr
    assert RegistryService.from_settings(server_settings).store.get_version("iris", 1).optimized is not None


def test_a_lightgbm_model_registers_from_its_text_format_and_serves_as_onnx(
    server_settings: Settings, tmp_path
) -> None:
    """LightGBM has no layer: registered natively, it is served through its validated ONNX form."""
    import lightgbm as lgb
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(X, y), 20)
    path = tmp_path / "wine.txt"
    booster.save_model(str(path))
    service = RegistryService.from_settings(server_settings)
    record = service.register("wine-lgb", path, optimize_rows=X, progress=False)
    assert (record.framework, record.artifact_format, record.signature.classes) == (
        "lightgbm",
        "lightgbm-txt",
        [0, 1, 2],
    )
    assert record.optimized is not None and record.optimized.max_abs_diff <= 1e-5
    _, model, _ = service.load("wine-lgb", 1)
    assert model.framework == "onnx"
    np.testing.assert_array_equal(model.predict(X), booster.predict(X).argmax(axis=1))
