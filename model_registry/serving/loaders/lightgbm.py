"""LightGBM models from LightGBM's own text format (safe: no code in the file).

LightGBM has no layer of its own: a registered LightGBM model is served through its ONNX form
(``--optimize``), by the pooled tier or by a function with the onnx layer. The native loader is what
registration (signature, validation of the compiled form) uses; ``lightgbm`` is imported on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model_registry.core.errors import ArtifactError
from model_registry.core.records import Signature

CLASSIFICATION_OBJECTIVES = ("binary", "multiclass", "multiclassova")


class LightGBMModel:
    """A LightGBM Booster."""

    framework = "lightgbm"

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        dump = booster.dump_model(num_iteration=0)
        self.objective: str = str(dump.get("objective", "")).split()[0]
        classifier = self.objective.startswith(CLASSIFICATION_OBJECTIVES)
        n_classes = int(dump.get("num_class", 1))
        names = list(booster.feature_name())
        generated = all(name == f"Column_{i}" for i, name in enumerate(names))
        self._classes = np.arange(max(n_classes, 2)) if classifier else None
        self.signature = Signature(
            n_features=int(booster.num_feature()),
            feature_names=None if generated else names,
            dtype="float64",
            output_kind="classification" if classifier else "regression",
            classes=self._classes.tolist() if self._classes is not None else None,
        )

    def predict_proba(self, features: np.ndarray) -> np.ndarray | None:
        if self._classes is None:
            return None
        raw = np.asarray(self.booster.predict(features))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self._classes is None:
            return np.asarray(self.booster.predict(features))
        proba = self.predict_proba(features)
        assert proba is not None
        return self._classes[np.argmax(proba, axis=1)]


def load_lightgbm(data: bytes, *, allow_pickle: bool = False) -> LightGBMModel:
    """Load a Booster from LightGBM's text format."""
    try:
        import lightgbm as lgb
    except ImportError as exc:
        raise ArtifactError(
            "LightGBM is not installed here: LightGBM models are served through their ONNX form "
            "(register with --optimize)"
        ) from exc
    try:
        booster = lgb.Booster(model_str=data.decode("utf-8"))
    except (UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
        raise ArtifactError(f"cannot load LightGBM model: {str(exc).splitlines()[0]}") from exc
    return LightGBMModel(booster)
