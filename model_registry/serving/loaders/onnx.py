"""ONNX models run by onnxruntime: the compiled serving format registered by ``--optimize``.

Imports neither scikit-learn nor scipy, so a function serving only optimized models needs a layer with
onnxruntime and numpy alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model_registry.core.errors import ArtifactError
from model_registry.core.records import Signature


class OnnxModel:
    """An ONNX graph converted from a native model; inputs are float32, as the converters declare them."""

    framework = "onnx"

    def __init__(self, data: bytes, signature: Signature) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread: batch-1 latency is best without thread hand-offs, and Lambda gives ~1 vCPU per 1.8 GB.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: converters' declared shapes draw a warning per run
        try:
            self.session: Any = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ArtifactError(f"cannot load ONNX artifact: {exc}") from exc
        self.signature = signature
        self._input = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self._label = outputs[0]
        self._proba = outputs[1] if signature.is_classifier and len(outputs) > 1 else None

    def _feed(self, features: np.ndarray) -> dict[str, np.ndarray]:
        return {self._input: np.ascontiguousarray(features, dtype=np.float32)}

    def predict(self, features: np.ndarray) -> np.ndarray:
        out = self.session.run([self._label], self._feed(features))[0]
        return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_proba(self, features: np.ndarray) -> np.ndarray | None:
        if self._proba is None:
            return None
        return np.asarray(self.session.run([self._proba], self._feed(features))[0], dtype=np.float64)


def load_onnx(data: bytes, *, allow_pickle: bool = False, signature: Signature | None = None) -> OnnxModel:
    """Load an ONNX artifact; its signature comes from the registry record (ONNX does not carry classes)."""
    if signature is None:
        raise ArtifactError("an ONNX artifact is loaded with the signature of its registered version")
    return OnnxModel(data, signature)
