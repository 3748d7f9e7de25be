from __future__ import annotations

import io
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from examples.models import ExampleModel
from model_registry.core.errors import ArtifactError, PickleNotAllowed, UnsupportedFormat, UntrustedTypes
from model_registry.serving.loaders import detect_format, load_model


def test_formats_are_detected_from_bytes(examples: dict[str, ExampleModel]) -> None:
    assert detect_format(examples["iris"].artifact.read_bytes()).name == "skops"
    assert detect_format(examples["breast-cancer"].artifact.read_bytes()).name == "xgboost-json"
    buffer = io.BytesIO()
    joblib.dump(examples["iris"].estimator, buffer)
    assert detect_format(buffer.getvalue(), "m.joblib").name == "joblib"


def test_xgboost_ubj_is_detected_and_loaded(examples: dict[str, ExampleModel], tmp_path: Path) -> None:
    path = tmp_path / "m.ubj"
    examples["breast-cancer"].estimator.save_model(path)
    data = path.read_bytes()
    assert detect_format(data, path.name).name == "xgboost-ubj"
    model = load_model(data, "xgboost-ubj", allow_pickle=False)
    X = examples["breast-cancer"].X_test
    np.testing.assert_array_equal(model.predict(X), examples["breast-cancer"].estimator.predict(X))


@pytest.mark.parametrize("data", [b"hello world", b"{not json", b"PK\x03\x04garbage", b"\x00" * 100])
def test_unknown_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedFormat):
        detect_format(data)


def test_corrupt_skops_is_refused() -> None:
    with pytest.raises(ArtifactError):
        load_model(b"PK\x03\x04schema.json" + b"\x00" * 64, "skops", allow_pickle=False)


def test_pickle_refused_unless_allowed(examples: dict[str, ExampleModel]) -> None:
    buffer = io.BytesIO()
    joblib.dump(examples["iris"].estimator, buffer)
    with pytest.raises(PickleNotAllowed):
        load_model(buffer.getvalue(), "joblib", allow_pickle=False)
    model = load_model(buffer.getvalue(), "joblib", allow_pickle=True)
    X = examples["iris"].X_test
    np.testing.assert_array_equal(model.predict(X), examples["iris"].estimator.predict(X))


class Sneaky(LogisticRegression):
    """A type outside the trusted modules: skops must not instantiate it."""


def test_skops_refuses_untrusted_types(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "sneaky.skops"
    sio.dump(Sneaky().fit(X, y), path)
    with pytest.raises(UntrustedTypes, match="Sneaky"):
        load_model(path.read_bytes(), "skops", allow_pickle=False)


def test_signatures_are_inferred(examples: dict[str, ExampleModel]) -> None:
    iris = load_model(examples["iris"].artifact.read_bytes(), "skops", allow_pickle=False).signature
    assert (iris.n_features, iris.output_kind, iris.classes) == (4, "classification", [0, 1, 2])
    cancer = load_model(examples["breast-cancer"].artifact.read_bytes(), "xgboost-json", allow_pickle=False)
    assert (cancer.signature.n_features, cancer.signature.classes) == (30, [0, 1])
    diabetes = load_model(examples["diabetes"].artifact.read_bytes(), "skops", allow_pickle=False).signature
    assert (diabetes.n_features, diabetes.output_kind, diabetes.classes) == (10, "regression", None)


def _xgboost_bytes(model: object, tmp_path: Path, name: str) -> bytes:
    path = tmp_path / f"{name}.json"
    model.save_model(path)  # type: ignore[attr-defined]
    return path.read_bytes()


def test_xgboost_regressor_predicts_like_the_trained_model(tmp_path: Path) -> None:
    import xgboost as xgb
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    trained = xgb.XGBRegressor(n_estimators=20, max_depth=3).fit(X, y)
    model = load_model(_xgboost_bytes(trained, tmp_path, "regressor"), "xgboost-json", allow_pickle=False)
    assert model.signature.output_kind == "regression" and model.signature.classes is None
    np.testing.assert_array_equal(model.predict(X[:20]), trained.predict(X[:20]))
    assert model.predict_proba(X[:20]) is None  # answered as 422 no_probabilities


def test_xgboost_multiclass_softprob_gives_labels_and_probabilities(tmp_path: Path) -> None:
    import xgboost as xgb
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    trained = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X, y)
    model = load_model(_xgboost_bytes(trained, tmp_path, "softprob"), "xgboost-json", allow_pickle=False)
    assert model.signature.classes == [0, 1, 2] and model.signature.n_features == X.shape[1]
    np.testing.assert_array_equal(model.predict(X), trained.predict(X))
    np.testing.assert_array_equal(model.predict_proba(X), trained.predict_proba(X))


def test_xgboost_softmax_booster_gives_labels_without_probabilities(tmp_path: Path) -> None:
    import xgboost as xgb
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    params = {"objective": "multi:softmax", "num_class": 3, "max_depth": 3}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=10)
    model = load_model(_xgboost_bytes(booster, tmp_path, "softmax"), "xgboost-json", allow_pickle=False)
    assert model.signature.classes == [0, 1, 2]
    expected = booster.predict(xgb.DMatrix(X)).astype(int)
    np.testing.assert_array_equal(model.predict(X), expected)
    assert model.predict_proba(X) is None
