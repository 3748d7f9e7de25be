"""``--optimize``: compile a registered scikit-learn, XGBoost or LightGBM model to ONNX, run by onnxruntime.

The ONNX graph is accepted only when it reproduces the native model on a validation sample the user
supplies: identical labels and probabilities within 1e-5 for classifiers, predictions within a relative
1e-5 for regressors. The native artifact always stays registered, as the fallback.
Pure conversion and comparison; the registry and S3 writes are in :mod:`model_registry.registry.service`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_registry.core.errors import InvalidInput, RegistryError
from model_registry.core.records import Signature
from model_registry.serving.loaders import LoadedModel

ONNX_FORMAT = "onnx"
PROBA_ATOL = 1e-5
REGRESSION_RTOL = 1e-5
# ai.onnx.ml 3 is the newest tree-ensemble opset both skl2onnx and onnxruntime implement fully.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# onnxmltools' XGBoost and LightGBM converters support opsets up to 15.
BOOSTER_OPSET = 15


class OptimizationRejected(RegistryError):
    """The model cannot be compiled, or the compiled form does not reproduce it."""

    status, code = 422, "optimization_rejected"


@dataclass(frozen=True)
class OptimizationReport:
    """What the validation of a compiled model found, and how fast each form predicts one row."""

    rows: int
    max_abs_diff: float
    native_batch1_us: float
    optimized_batch1_us: float


def read_validation_data(path: Path) -> np.ndarray:
    """Rows to validate on, from ``.npy`` or a numeric ``.csv`` (an optional header line is skipped)."""
    if not path.is_file():
        raise InvalidInput(f"validation data {path} does not exist")
    try:
        if path.suffix == ".npy":
            return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
        try:
            return np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError:  # a header line of column names
            return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"cannot read validation data {path}: {exc}") from exc


def check_rows(rows: np.ndarray, n_features: int) -> np.ndarray:
    """``rows`` as a finite float64 matrix of ``n_features`` columns, else InvalidInput."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != n_features or rows.shape[0] < 1:
        raise InvalidInput(
            f"validation data must be rows of {n_features} features, got an array of shape {rows.shape}"
        )
    if not np.isfinite(rows).all():
        raise InvalidInput("validation data holds NaN or infinite values")
    return rows


def to_onnx(model: LoadedModel, sample: np.ndarray) -> bytes:
    """The ONNX graph of a scikit-learn model (estimator or pipeline, with skl2onnx) or an XGBoost or
    LightGBM booster (with onnxmltools), float32 input."""
    if model.framework in ("xgboost", "lightgbm"):
        return _booster_to_onnx(model, sample)
    if model.framework != "sklearn":
        raise OptimizationRejected(
            f"--optimize compiles scikit-learn, XGBoost and LightGBM models; this one is {model.framework}"
        )
    from skl2onnx import to_onnx as convert

    estimator: Any = model.estimator  # type: ignore[attr-defined]
    options = {"zipmap": False} if model.signature.is_classifier else None
    try:
        graph = convert(estimator, sample[:1].astype(np.float32), options=options, target_opset=TARGET_OPSET)
    except Exception as exc:  # skl2onnx raises assorted errors for unsupported estimators
        raise OptimizationRejected(f"cannot compile {type(estimator).__name__} to ONNX: {exc}") from exc
    return graph.SerializeToString()


def _booster_to_onnx(model: LoadedModel, sample: np.ndarray) -> bytes:
    """onnxmltools' XGBoost and LightGBM converters: labels are class indices, which validation compares
    with the native labels (a model whose classes are not 0..n-1 is refused there, not served wrong)."""
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster: Any = model.booster  # type: ignore[attr-defined]
    inputs = [("input", FloatTensorType([None, sample.shape[1]]))]
    try:
        if model.framework == "lightgbm":
            graph = convert_lightgbm(booster, initial_types=inputs, target_opset=BOOSTER_OPSET, zipmap=False)
        else:
            graph = convert_xgboost(booster, initial_types=inputs, target_opset=BOOSTER_OPSET)
    except Exception as exc:  # onnxmltools raises assorted errors for unsupported objectives
        raise OptimizationRejected(f"cannot compile this {model.framework} model to ONNX: {exc}") from exc
    return graph.SerializeToString()


def _batch1_us(predict: Any, row: np.ndarray, repeats: int = 50) -> float:
    predict(row)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(row)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1e6)


def validate(native: LoadedModel, optimized: LoadedModel, rows: np.ndarray) -> OptimizationReport:
    """Compare the two forms on ``rows``; raise :class:`OptimizationRejected` on any mismatch."""
    signature: Signature = native.signature
    expected, got = np.asarray(native.predict(rows)), np.asarray(optimized.predict(rows))
    if expected.shape != got.shape:
        raise OptimizationRejected(f"prediction shapes differ: native {expected.shape}, ONNX {got.shape}")
    if signature.is_classifier:
        mismatched = int((expected != got).sum())
        if mismatched:
            raise OptimizationRejected(f"ONNX labels differ from the native model on {mismatched} rows")
        native_proba, onnx_proba = native.predict_proba(rows), optimized.predict_proba(rows)
        diff = 0.0
        if native_proba is not None:
            if onnx_proba is None or onnx_proba.shape != native_proba.shape:
                raise OptimizationRejected("ONNX gives no probabilities of the native model's shape")
            diff = float(np.abs(native_proba - onnx_proba).max())
            if diff > PROBA_ATOL:
                raise OptimizationRejected(
                    f"ONNX probabilities differ by up to {diff:.2e} (limit {PROBA_ATOL})"
                )
    else:
        diff = float(np.abs(expected.astype(np.float64) - got.astype(np.float64)).max())
        scale = float(np.abs(expected).max()) or 1.0
        if diff > REGRESSION_RTOL * scale:
            raise OptimizationRejected(
                f"ONNX predictions differ by up to {diff:.3g} (limit {REGRESSION_RTOL} x {scale:.3g})"
            )
    row = rows[:1]
    return OptimizationReport(
        rows=int(rows.shape[0]),
        max_abs_diff=diff,
        native_batch1_us=_batch1_us(native.predict, row),
        optimized_batch1_us=_batch1_us(optimized.predict, row),
    )
