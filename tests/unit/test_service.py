"""The registry service against in-process moto: register, load back, refuse what must be refused."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from examples.models import ExampleModel
from model_registry.core.errors import (
    ArtifactError,
    IntegrityError,
    InvalidInput,
    ModelNotFound,
    PickleNotAllowed,
    VersionNotFound,
)
from model_registry.registry.service import RegistryService


def test_register_assigns_increasing_versions(
    service: RegistryService, examples: dict[str, ExampleModel]
) -> None:
    iris = examples["iris"]
    first = service.register("iris", iris.artifact, tags={"team": "ds"}, metrics=iris.metrics)
    second = service.register("iris", iris.artifact, description="same bytes again")
    assert (first.version, second.version) == (1, 2)
    assert first.s3_key == second.s3_key == f"models/iris/{first.sha256}.skops"
    listed = service.store.list_versions("iris")
    assert [r.version for r in listed] == [2, 1]
    assert service.store.get_version("iris", 1).tags == {"team": "ds"}
    objects = service.artifacts._s3.list_objects_v2(Bucket=service.settings.bucket_name)["Contents"]
    assert len(objects) == 1  # idempotent re-upload of the same bytes


@pytest.mark.parametrize("name", ["iris", "breast-cancer", "diabetes"])
def test_loaded_back_model_predicts_like_the_original(
    service: RegistryService, examples: dict[str, ExampleModel], name: str
) -> None:
    example = examples[name]
    record = service.register(name, example.artifact, feature_names=example.feature_names)
    loaded_record, model, _ = service.load(name, record.version)
    assert loaded_record == record
    assert record.signature.feature_names == example.feature_names
    np.testing.assert_array_equal(model.predict(example.X_test), example.estimator.predict(example.X_test))
    if record.signature.is_classifier:
        np.testing.assert_array_equal(  # the same model, reloaded: bit-identical
            model.predict_proba(example.X_test), example.estimator.predict_proba(example.X_test)
        )


def test_tampered_artifact_is_refused_before_deserialisation(
    service: RegistryService, examples: dict[str, ExampleModel], tmp_path: Path
) -> None:
    import joblib

    settings = service.settings.__class__(**{**vars(service.settings), "allow_pickle": True})
    pickle_service = RegistryService(settings, service.store, service.artifacts)
    artifact = tmp_path / "iris.joblib"
    joblib.dump(examples["iris"].estimator, artifact)
    record = pickle_service.register("iris", artifact)

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # runs on unpickling
            return (marker.write_text, ("deserialised",))

    service.artifacts._s3.put_object(
        Bucket=settings.bucket_name, Key=record.s3_key, Body=pickle.dumps(Payload())
    )
    with pytest.raises(IntegrityError, match="integrity"):
        pickle_service.load("iris", record.version)
    assert not marker.exists(), "the tampered bytes were deserialised"


def test_pickle_registration_refused_when_not_allowed(
    service: RegistryService, examples: dict[str, ExampleModel], tmp_path: Path
) -> None:
    import joblib

    artifact = tmp_path / "iris.joblib"
    buffer = io.BytesIO()
    joblib.dump(examples["iris"].estimator, buffer)
    artifact.write_bytes(buffer.getvalue())
    with pytest.raises(PickleNotAllowed):
        service.register("iris", artifact)
    assert service.store.list_models() == []


def test_missing_model_and_version_errors(
    service: RegistryService, examples: dict[str, ExampleModel]
) -> None:
    with pytest.raises(ModelNotFound):
        service.store.get_version("nope", 1)
    service.register("iris", examples["iris"].artifact)
    with pytest.raises(VersionNotFound):
        service.store.get_version("iris", 7)
    assert [m.model_name for m in service.store.list_models()] == ["iris"]
    archived = service.store.archive_version("iris", 1)
    assert archived.status == "archived"
    assert service.store.list_versions("iris", include_archived=False) == []


@pytest.mark.parametrize(
    "metrics",
    [{"accuracy": float("nan")}, {"accuracy": float("inf")}, {"accuracy": "high"}, {"accuracy": True}],
)
def test_registration_refuses_metrics_that_are_not_finite_numbers(
    service: RegistryService, examples: dict[str, ExampleModel], metrics: dict
) -> None:
    with pytest.raises(InvalidInput) as refused:
        service.register("iris", examples["iris"].artifact, metrics=metrics, progress=False)
    assert refused.value.code == "invalid_metrics"
    assert service.store.list_models() == []  # nothing written


def test_registration_refuses_feature_names_that_do_not_fit_the_model(
    service: RegistryService, examples: dict[str, ExampleModel], tmp_path: Path
) -> None:
    iris = examples["iris"]
    with pytest.raises(InvalidInput, match="3 feature names given, but the model takes 4 features"):
        service.register("iris", iris.artifact, feature_names=iris.feature_names[:3], progress=False)
    import xgboost as xgb
    from sklearn.datasets import load_wine

    wine = load_wine()  # an XGBoost model that stores its own feature names
    names = [name.replace("/", "_") for name in wine.feature_names]
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(wine.data, wine.target, feature_names=names), 3)
    artifact = tmp_path / "wine.json"
    booster.save_model(artifact)
    assert service.register("wine", artifact, progress=False).signature.feature_names == names
    with pytest.raises(InvalidInput, match="differ from the names stored in the model"):
        service.register("wine", artifact, feature_names=names[::-1], progress=False)
    assert [r.version for r in service.store.list_versions("wine")] == [1]


def test_registration_refuses_empty_and_non_regular_artifacts(
    service: RegistryService, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.skops"
    empty.write_bytes(b"")
    with pytest.raises(ArtifactError, match="empty"):
        service.register("iris", empty, progress=False)
    with pytest.raises(ArtifactError, match="not a regular file") as directory:
        service.register("iris", tmp_path, progress=False)
    assert directory.value.code == "artifact_missing"
    assert service.store.list_models() == []
