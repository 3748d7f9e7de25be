"""Framework loaders, chosen by a lookup table and imported lazily.

A function that serves only XGBoost models never imports scikit-learn, and the other way round:
each framework's module is imported the first time one of its formats is loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from model_registry.core import contract
from model_registry.core.errors import UnsupportedFormat
from model_registry.core.records import Signature


class LoadedModel(Protocol):
    """What the serving code needs from a deserialised model."""

    framework: str
    signature: Signature

    def predict(self, features: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, features: np.ndarray) -> np.ndarray | None: ...


@dataclass(frozen=True)
class ArtifactFormat:
    """One on-disk format: which framework reads it, its file extension and its loader."""

    name: str
    framework: str
    extension: str
    loader: str  # "module:function", imported on first use
    safe: bool  # False when loading may run arbitrary code (pickle)


FORMATS: dict[str, ArtifactFormat] = {
    f.name: f
    for f in (
        ArtifactFormat(
            "skops", "sklearn", "skops", "model_registry.serving.loaders.sklearn:load_skops", True
        ),
        ArtifactFormat(
            "joblib", "sklearn", "joblib", "model_registry.serving.loaders.sklearn:load_joblib", False
        ),
        ArtifactFormat(
            "xgboost-json", "xgboost", "json", "model_registry.serving.loaders.xgboost:load_booster", True
        ),
        ArtifactFormat(
            "xgboost-ubj", "xgboost", "ubj", "model_registry.serving.loaders.xgboost:load_booster", True
        ),
        ArtifactFormat(
            "lightgbm-txt", "lightgbm", "txt", "model_registry.serving.loaders.lightgbm:load_lightgbm", True
        ),
    )
}
# Frameworks a model is registered with (detected from the artifact): the contract's list, which the
# formats above must cover (tests/unit/test_contract.py). ONNX is never registered directly: it is the
# optimized form of a registered version (model_registry.registry.optimize).
REGISTRABLE_FRAMEWORKS = contract.REGISTRABLE_FRAMEWORKS
OPTIMIZED_FORMATS: dict[str, ArtifactFormat] = {
    "onnx": ArtifactFormat("onnx", "onnx", "onnx", "model_registry.serving.loaders.onnx:load_onnx", True)
}

_COMPRESSED_MAGIC = (b"\x1f\x8b", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda", b"\xfd7zXZ", b"BZh")


def detect_format(data: bytes, filename: str = "") -> ArtifactFormat:
    """Recognise the artifact format from its bytes (and, to break ties, its file name)."""
    head = data[:256]
    if head.startswith(b"PK\x03\x04") and b"schema.json" in data[:65536] + data[-65536:]:
        return FORMATS["skops"]
    if head.lstrip().startswith(b"{"):
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            document = None
        if isinstance(document, dict) and "learner" in document:
            return FORMATS["xgboost-json"]
        if document is None and b"learner" in head:
            return FORMATS["xgboost-ubj"]
    if head.startswith(b"tree\nversion="):  # LightGBM's text format
        return FORMATS["lightgbm-txt"]
    pickle_name = filename.endswith((".joblib", ".pkl", ".pickle"))
    if head.startswith(b"\x80") or (pickle_name and head.startswith(_COMPRESSED_MAGIC)):
        return FORMATS["joblib"]
    where = f" for {filename}" if filename else ""
    raise UnsupportedFormat(
        f"unrecognised artifact format{where}: expected skops, joblib/pickle, XGBoost JSON/UBJ or "
        "LightGBM text"
    )


def resolve_format(data: bytes, filename: str = "", framework: str | None = None) -> ArtifactFormat:
    """Detect the format and check it against an explicitly requested framework."""
    detected = detect_format(data, filename)
    if framework is not None and framework != detected.framework:
        raise UnsupportedFormat(
            f"artifact is {detected.name} ({detected.framework}), not a {framework} model"
        )
    return detected


def load_model(
    data: bytes, artifact_format: str, *, allow_pickle: bool, signature: Signature | None = None
) -> LoadedModel:
    """Deserialise verified artifact bytes with the loader of ``artifact_format``.

    ``signature`` (the registered one) is needed by optimized formats, which do not carry it.
    """
    fmt = FORMATS.get(artifact_format) or OPTIMIZED_FORMATS.get(artifact_format)
    if fmt is None:
        raise UnsupportedFormat(f"unknown artifact format {artifact_format!r}")
    module_name, function_name = fmt.loader.split(":")
    loader: Any = getattr(importlib.import_module(module_name), function_name)
    if fmt.name in OPTIMIZED_FORMATS:
        return loader(data, allow_pickle=allow_pickle, signature=signature)
    return loader(data, allow_pickle=allow_pickle)


def runtime_available(artifact_format: str) -> bool:
    """Whether this process can load ``artifact_format`` (its framework is installed)."""
    fmt = FORMATS.get(artifact_format) or OPTIMIZED_FORMATS.get(artifact_format)
    runtimes = {"onnx": "onnxruntime", "sklearn": "sklearn", "xgboost": "xgboost", "lightgbm": "lightgbm"}
    module = runtimes.get(fmt.framework) if fmt else None
    return module is not None and importlib.util.find_spec(module) is not None
