"""The write side of the registry: register a model version (validated, uploaded, recorded) and attach
its compiled ONNX form. Runs on operators' machines and in CI, not in the function."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_registry.core.errors import InvalidInput, PickleNotAllowed
from model_registry.core.records import (
    ModelVersion,
    OptimizedArtifact,
    utc_now,
    validate_model_name,
    validate_tags,
)
from model_registry.registry.artifacts import check_readable, sha256_bytes
from model_registry.registry.loading import ModelSource
from model_registry.serving.loaders import LoadedModel, load_model, resolve_format

if TYPE_CHECKING:
    import numpy as np

    from model_registry.registry.optimize import OptimizationReport


class RegistryService(ModelSource):
    """Registers model versions (and reads them back, as :class:`ModelSource` does)."""

    def register(
        self,
        model_name: str,
        artifact_path: Path,
        *,
        framework: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        feature_names: list[str] | None = None,
        created_by: str = "",
        source_commit: str = "",
        progress: bool = True,
        optimize_rows: np.ndarray | None = None,
    ) -> ModelVersion:
        """Validate, load and fingerprint the artifact, upload it, then record the new version.

        Everything that can fail on bad input is checked before anything is written; the upload is
        content-addressed and idempotent and the registry write is one transaction, so an interrupted
        registration leaves no visible version and can simply be retried.
        """
        validate_model_name(model_name)
        validate_tags(tags or {})
        check_readable(artifact_path)
        data = artifact_path.read_bytes()
        fmt = resolve_format(data, artifact_path.name, framework)
        if not fmt.safe and not self.settings.allow_pickle:
            raise PickleNotAllowed(
                f"{artifact_path.name} is a pickle (joblib) artifact and this platform does not allow "
                "pickle: save the model with skops, or set MODEL_ALLOW_PICKLE=true"
            )
        model = load_model(data, fmt.name, allow_pickle=self.settings.allow_pickle)
        signature = model.signature
        if feature_names:
            if len(feature_names) != signature.n_features:
                raise InvalidInput(
                    f"{len(feature_names)} feature names given, "
                    f"but the model takes {signature.n_features} features"
                )
            if signature.feature_names and list(feature_names) != signature.feature_names:
                raise InvalidInput("feature names given differ from the names stored in the model")
            signature = replace(signature, feature_names=list(feature_names))
        _check_metrics(metrics or {})
        compiled = (
            self._compile(model, signature, optimize_rows, model_name) if optimize_rows is not None else None
        )
        sha256 = sha256_bytes(data)
        key = self.artifacts.upload(model_name, artifact_path, sha256, fmt.extension, progress=progress)
        optimized = self._store_compiled(model_name, *compiled) if compiled else None
        record = ModelVersion(
            model_name=model_name,
            version=0,
            framework=fmt.framework,
            artifact_format=fmt.name,
            s3_key=key,
            sha256=sha256,
            size_bytes=len(data),
            signature=signature,
            metrics=dict(metrics or {}),
            tags=dict(tags or {}),
            description=description,
            created_at=utc_now(),
            created_by=created_by,
            source_commit=source_commit,
            optimized=optimized,
        )
        return self.store.register(record)

    def _compile(
        self, native: LoadedModel, signature: Any, rows: np.ndarray, model_name: str
    ) -> tuple[bytes, OptimizationReport]:
        """The ONNX graph of ``native`` and its validation report (raises OptimizationRejected)."""
        from model_registry.registry.optimize import ONNX_FORMAT, check_rows, to_onnx, validate

        rows = check_rows(rows, signature.n_features)
        graph = to_onnx(native, rows)
        compiled = load_model(graph, ONNX_FORMAT, allow_pickle=False, signature=signature)
        return graph, validate(native, compiled, rows)

    def _store_compiled(self, model_name: str, graph: bytes, report: OptimizationReport) -> OptimizedArtifact:
        from model_registry.registry.optimize import ONNX_FORMAT

        sha256 = sha256_bytes(graph)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{model_name}.onnx"
            path.write_bytes(graph)
            key = self.artifacts.upload(model_name, path, sha256, ONNX_FORMAT, progress=False)
        return OptimizedArtifact(
            artifact_format=ONNX_FORMAT,
            s3_key=key,
            sha256=sha256,
            size_bytes=len(graph),
            validation_rows=report.rows,
            max_abs_diff=report.max_abs_diff,
            native_batch1_us=report.native_batch1_us,
            optimized_batch1_us=report.optimized_batch1_us,
        )

    def optimize(self, model_name: str, version: int, rows: np.ndarray) -> ModelVersion:
        """Compile a registered version to ONNX, validate it on ``rows`` and attach it to the version.

        Raises :class:`~model_registry.registry.optimize.OptimizationRejected` (and writes nothing) when
        the model cannot be compiled or the compiled form does not reproduce it. Re-running is idempotent.
        """
        record = self.store.get_version(model_name, version)
        native = load_model(
            self.fetch_verified(record), record.artifact_format, allow_pickle=self.settings.allow_pickle
        )
        graph, report = self._compile(native, record.signature, rows, model_name)
        optimized = self._store_compiled(model_name, graph, report)
        return self.store.set_optimized(model_name, version, optimized)


def _check_metrics(metrics: dict[str, Any]) -> None:
    for key, value in metrics.items():
        if not isinstance(key, str) or not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInput(
                f"metric {key!r} must map a name to a number, got {value!r}", code="invalid_metrics"
            )
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput(f"metric {key!r} is not finite", code="invalid_metrics")
