"""XGBoost models from the native JSON or UBJ formats (safe: no code in the file)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xgboost as xgb

from model_registry.core.errors import ArtifactError
from model_registry.core.records import Signature

CLASSIFICATION_OBJECTIVES = ("binary:logistic", "multi:softprob", "multi:softmax")


class XGBoostModel:
    """A Booster, predicting with ``inplace_predict`` (no DMatrix per request)."""

    framework = "xgboost"

    def __init__(self, booster: xgb.Booster) -> None:
        self.booster = booster
        config = json.loads(booster.save_config())
        self.objective: str = config["learner"]["objective"]["name"]
        sklearn_meta = json.loads(booster.attr("scikit_learn") or "{}")
        n_classes = int(config["learner"]["learner_model_param"].get("num_class", "0"))
        classifier = self.objective.startswith(CLASSIFICATION_OBJECTIVES)
        classes: list[Any] | None = None
        if classifier:
            stored = sklearn_meta.get("classes_")
            classes = list(stored) if stored else list(range(max(n_classes, 2)))
        self.signature = Signature(
            n_features=int(booster.num_features()),
            feature_names=list(booster.feature_names) if booster.feature_names else None,
            dtype="float32",
            output_kind="classification" if classifier else "regression",
            classes=classes,
        )
        self._classes = np.asarray(classes) if classes is not None else None

    def _raw(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(features, validate_features=False))

    def predict_proba(self, features: np.ndarray) -> np.ndarray | None:
        if self._classes is None or self.objective == "multi:softmax":
            return None
        raw = self._raw(features)
        if raw.ndim == 1:  # binary: probability of the positive class
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self._classes is None:
            return self._raw(features)
        if self.objective == "multi:softmax":
            return self._classes[self._raw(features).astype(int)]
        proba = self.predict_proba(features)
        assert proba is not None
        return self._classes[np.argmax(proba, axis=1)]


def load_booster(data: bytes, *, allow_pickle: bool = False) -> XGBoostModel:
    """Load a Booster from JSON or UBJ bytes."""
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as exc:
        raise ArtifactError(f"cannot load XGBoost model: {str(exc).splitlines()[0]}") from exc
    return XGBoostModel(booster)
