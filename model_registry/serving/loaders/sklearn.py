"""scikit-learn models from skops (safe, trusted types only) or joblib (pickle, opt-in)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.base import is_classifier

from model_registry.core.errors import ArtifactError, PickleNotAllowed, UntrustedTypes
from model_registry.core.records import Signature

# Types from these modules are data containers and estimators, not code runners: trusted by the platform.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.", "xgboost.")


class SklearnModel:
    """A fitted scikit-learn estimator (or pipeline)."""

    framework = "sklearn"

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.signature = infer_signature(estimator)
        self._has_proba = hasattr(estimator, "predict_proba") and self.signature.is_classifier

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator.predict(features))

    def predict_proba(self, features: np.ndarray) -> np.ndarray | None:
        return np.asarray(self.estimator.predict_proba(features)) if self._has_proba else None


def infer_signature(estimator: Any) -> Signature:
    """Feature count, names and classes from a fitted estimator."""
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise ArtifactError("model has no n_features_in_: is it fitted?", code="model_not_fitted")
    names = getattr(estimator, "feature_names_in_", None)
    classifier = bool(is_classifier(estimator))
    classes = getattr(estimator, "classes_", None) if classifier else None
    return Signature(
        n_features=int(n_features),
        feature_names=[str(n) for n in names] if names is not None else None,
        dtype="float64",
        output_kind="classification" if classifier else "regression",
        classes=np.asarray(classes).tolist() if classes is not None else None,
    )


def load_skops(data: bytes, *, allow_pickle: bool = False) -> SklearnModel:
    """Load a skops artifact, trusting only types from :data:`TRUSTED_PREFIXES`."""
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises assorted errors on corrupt zips
        raise ArtifactError(f"corrupt skops artifact: {exc}") from exc
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise UntrustedTypes(f"skops artifact contains untrusted types: {', '.join(sorted(refused))}")
    try:
        return SklearnModel(sio.loads(data, trusted=untrusted))
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"cannot load skops artifact: {exc}") from exc


def load_joblib(data: bytes, *, allow_pickle: bool = False) -> SklearnModel:
    """Load a joblib/pickle artifact; only called after the sha256 check, and only if pickle is allowed."""
    if not allow_pickle:
        raise PickleNotAllowed(
            "pickle (joblib) artifacts are refused on this platform: set MODEL_ALLOW_PICKLE=true "
            "to allow them, or register the model in skops format"
        )
    import joblib

    try:
        estimator = joblib.load(io.BytesIO(data))
    except Exception as exc:
        raise ArtifactError(f"cannot load joblib artifact: {exc}") from exc
    return SklearnModel(estimator)
