"""Serving: the pinned model loaded once, other versions on demand in a small LRU cache.

Used by the Lambda handler; no AWS client or framework import happens per request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_registry.core.errors import DependencyUnavailable, InvalidInput, ModelNotFound, RegistryError
from model_registry.core.records import ModelVersion
from model_registry.registry.loading import LoadTimings, ModelSource
from model_registry.serving import codecs
from model_registry.serving.loaders import LoadedModel

LATEST = "latest"
# After a failed load of the pinned model, requests answer 503 at once for this long instead of each
# waiting for the registry again: a registry that hangs must not hold every request for its timeouts.
LOAD_RETRY_INTERVAL_S = 2.0


@dataclass(frozen=True)
class ServedModel:
    """A loaded model version."""

    record: ModelVersion
    model: LoadedModel
    timings: LoadTimings

    @property
    def version(self) -> int:
        return self.record.version


def parse_pin(value: str | None) -> int | None:
    """The pinned version from MODEL_VERSION: a number, or None for the latest registered version."""
    if value is None or value.strip().lower() in ("", LATEST):
        return None
    try:
        version = int(value)
    except ValueError:
        raise RegistryError(f"MODEL_VERSION must be a version number or 'latest', got {value!r}") from None
    if version < 1:
        raise RegistryError(f"MODEL_VERSION must be at least 1, got {version}")
    return version


def parse_version(text: str) -> int:
    """A version from a URL path segment; 404 when it cannot be one."""
    if not codecs.is_ascii_int(text, max_digits=9) or int(text) < 1:
        raise InvalidInput(f"version {text!r} is not a version number", code="version_not_found", status=404)
    return int(text)


def _overflows(run: Callable[[np.ndarray], Any], features: np.ndarray) -> bool:
    """Whether ``run`` overflows a float on ``features`` (asked only after it failed: the happy path
    pays nothing)."""
    try:
        with np.errstate(over="raise", invalid="raise"):
            run(features)
    except FloatingPointError:
        return True
    except Exception:  # it fails for another reason
        return False
    return False


def _finite_run(run: Callable[[np.ndarray], Any], features: np.ndarray) -> Any:
    """``run(features)``, refusing with a 422 finite inputs that overflow inside the model (a scaler
    turning 1e308 into infinity) instead of answering a model error, or non-finite outputs."""
    try:
        output = run(features)
    except Exception:
        if _overflows(run, features):
            raise InvalidInput(
                "a feature value is so large that the model's arithmetic overflows: send values in the "
                "range the model was trained on",
                code="input_out_of_range",
                status=422,
            ) from None
        raise
    if isinstance(output, np.ndarray) and output.dtype.kind == "f" and not np.isfinite(output).all():
        raise InvalidInput(
            "the model's output is not a finite number for these inputs: send values in the range the "
            "model was trained on",
            code="input_out_of_range",
            status=422,
        )
    return output


def _permanent(error: RegistryError) -> bool:
    """A load failure that answers as itself: not a dependency outage, and not a model or version that
    is not registered yet (both answer 503 and are retried)."""
    return error.status < 500 and error.status != 404


class ModelServer:
    """Serves one model name: its pinned version and, on demand, explicit versions."""

    def __init__(self, service: ModelSource, model_name: str, pin: int | None, cache_size: int = 2) -> None:
        self.service = service
        self.model_name = model_name
        self.pin = pin
        self.cache_size = max(cache_size, 0)
        self.pinned: ServedModel | None = None
        self.load_error: RegistryError | None = None
        self._failed_at = float("-inf")
        self._cache: OrderedDict[int, ServedModel] = OrderedDict()
        self._lock = threading.Lock()
        self.configuration_error: RegistryError | None = None

    def misconfigured(self, error: RegistryError) -> None:
        """Serve nothing: every request answers ``error`` (a deployment problem no retry can fix)."""
        self.configuration_error = error

    def load_pinned(self) -> ServedModel:
        """Load the pinned version (at init); remember a failure so requests answer 503 and retry."""
        try:
            version = self.pin
            if version is None:
                # Before a rollout pins a version, serve what the registry's traffic policy names (the
                # version the pool serves): a model moving into the dedicated tier keeps its version.
                version = self.service.store.summary(self.model_name).serving_version
            record, model, timings = self.service.load(self.model_name, version)
        except RegistryError as exc:
            self.load_failed(exc)
            raise
        self.pinned = ServedModel(record, model, timings)
        self.load_error = None
        return self.pinned

    def load_failed(self, error: RegistryError) -> None:
        """Record a failed load of the pinned model: requests answer 503 and retry after a pause."""
        self.load_error = error
        self._failed_at = time.monotonic()

    def check_name(self, name: str) -> None:
        if name != self.model_name:
            raise ModelNotFound(
                f"model {name!r} is not served here (this endpoint serves {self.model_name!r})"
            )

    def get(self, version: int | None = None) -> ServedModel:
        """The pinned model (loading it if init failed) or an explicit version from the cache."""
        if self.configuration_error is not None:
            raise self.configuration_error
        pinned = self.pinned
        if version is None or (pinned is not None and version == pinned.version):
            if pinned is not None:
                return pinned
            if self.load_error is not None and time.monotonic() - self._failed_at < LOAD_RETRY_INTERVAL_S:
                if _permanent(self.load_error):  # e.g. a pickle this function may not load: no retry helps
                    raise self.load_error
                raise DependencyUnavailable(
                    f"model {self.model_name!r} is not loaded: {self.load_error.message}"
                )
            try:
                return self.load_pinned()
            except DependencyUnavailable:
                raise
            except RegistryError as exc:
                if not _permanent(exc):
                    raise DependencyUnavailable(
                        f"model {self.model_name!r} is not loaded: {exc.message}"
                    ) from exc
                raise
        with self._lock:
            served = self._cache.get(version)
            if served is not None:
                self._cache.move_to_end(version)
                return served
        record, model, timings = self.service.load(self.model_name, version)
        served = ServedModel(record, model, timings)
        with self._lock:
            self._cache[version] = served
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return served

    # ------------------------------------------------------------------ predictions

    def predict(self, served: ServedModel, payload: Any, max_batch_size: int) -> dict[str, Any]:
        """The ``/models/.../predict`` response body for ``payload``."""
        signature = served.record.signature
        features, want_proba = codecs.decode_predict_request(payload, signature, max_batch_size)
        predictions = _finite_run(served.model.predict, features)
        body: dict[str, Any] = {
            "predictions": codecs.to_jsonable(predictions),
            "model_name": self.model_name,
            "model_version": str(served.version),
        }
        if want_proba:
            proba = _finite_run(served.model.predict_proba, features)
            if proba is None:
                raise InvalidInput(
                    "this model does not give probabilities", code="no_probabilities", status=422
                )
            body["probabilities"] = codecs.to_jsonable(proba)
            body["classes"] = signature.classes
        return body

    def infer_v2(self, served: ServedModel, request: codecs.V2Request) -> dict[str, np.ndarray]:
        """Output tensors of a V2 request."""
        tensors: dict[str, np.ndarray] = {}
        for name in request.outputs:
            if name == codecs.OUTPUT_PREDICT:
                tensors[name] = np.asarray(_finite_run(served.model.predict, request.features))
            else:
                proba = _finite_run(served.model.predict_proba, request.features)
                assert proba is not None
                tensors[name] = np.asarray(proba, dtype=np.float64)
        return tensors

    # ------------------------------------------------------------------ metadata

    def metadata(self, served: ServedModel | None) -> dict[str, Any]:
        """``GET /models/{name}``: the versions and the version this endpoint serves by default."""
        records = self.service.store.list_versions(self.model_name)
        return {
            "model_name": self.model_name,
            "served_version": str(served.version) if served else None,
            "pinned_version": str(self.pin) if self.pin else LATEST,
            "versions": [
                {
                    "version": str(r.version),
                    "status": r.status,
                    "framework": r.framework,
                    "created_at": r.created_at,
                    "description": r.description,
                }
                for r in records
            ],
            "signature": served.record.signature.to_dict() if served else None,
            "framework": served.record.framework if served else None,
            # What runs the predictions: the native framework, or "onnx" for an optimized version.
            "serving_format": served.model.framework if served else None,
        }

    def version_metadata(self, version: int) -> dict[str, Any]:
        """``GET /models/{name}/versions/{v}``: one version record."""
        record = self.service.store.get_version(self.model_name, version)
        data = record.to_dict()
        data["version"] = str(record.version)
        return data

    def v2_metadata(self, served: ServedModel) -> dict[str, Any]:
        """Open Inference Protocol model metadata."""
        signature = served.record.signature
        outputs = [
            {
                "name": codecs.OUTPUT_PREDICT,
                "datatype": "FP64" if not signature.is_classifier else "INT64",
                "shape": [-1],
            }
        ]
        if signature.is_classifier:
            outputs.append(
                {"name": codecs.OUTPUT_PROBA, "datatype": "FP64", "shape": [-1, len(signature.classes or [])]}
            )
        return {
            "name": self.model_name,
            "versions": [str(served.version)],
            "platform": served.record.framework,
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, signature.n_features]}],
            "outputs": outputs,
        }
