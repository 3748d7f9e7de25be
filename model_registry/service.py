"""Orchestration: register a model version, and load one back verified."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from model_registry import aws
from model_registry.artifacts import ArtifactStore, check_readable, sha256_bytes, verify
from model_registry.errors import ArtifactError, InvalidInput, PickleNotAllowed
from model_registry.loaders import LoadedModel, load_model, resolve_format
from model_registry.records import ModelVersion, utc_now, validate_model_name, validate_tags
from model_registry.settings import Settings
from model_registry.store import RegistryStore


@dataclass(frozen=True)
class LoadTimings:
    """Where a model load spent its time, in milliseconds."""

    registry_ms: float
    fetch_ms: float
    verify_ms: float
    load_ms: float


class RegistryService:
    """The registry and the artifact store, used together."""

    def __init__(self, settings: Settings, store: RegistryStore, artifacts: ArtifactStore) -> None:
        self.settings = settings
        self.store = store
        self.artifacts = artifacts

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> RegistryService:
        """Build the service with cached boto3 clients for ``settings`` (default: from the environment)."""
        settings = settings or Settings.from_env()
        return cls(
            settings,
            RegistryStore(settings.table_name, aws.client_for("dynamodb", settings)),
            ArtifactStore(settings.bucket_name, aws.client_for("s3", settings)),
        )

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
        sha256 = sha256_bytes(data)
        key = self.artifacts.upload(model_name, artifact_path, sha256, fmt.extension, progress=progress)
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
        )
        return self.store.register(record)

    def fetch_verified(self, record: ModelVersion) -> bytes:
        """The artifact bytes of ``record``, checked against its sha256."""
        return self.artifacts.download_verified(record.s3_key, record.sha256)

    def load(self, model_name: str, version: int) -> tuple[ModelVersion, LoadedModel, LoadTimings]:
        """Look up, fetch, verify and deserialise one version."""
        start = time.perf_counter()
        record = self.store.get_version(model_name, version)
        looked_up = time.perf_counter()
        data = self.artifacts.download(record.s3_key)
        fetched = time.perf_counter()
        verify(record.s3_key, data, record.sha256)
        verified = time.perf_counter()
        model = load_model(data, record.artifact_format, allow_pickle=self.settings.allow_pickle)
        loaded = time.perf_counter()
        timings = LoadTimings(
            registry_ms=(looked_up - start) * 1000,
            fetch_ms=(fetched - looked_up) * 1000,
            verify_ms=(verified - fetched) * 1000,
            load_ms=(loaded - verified) * 1000,
        )
        return record, model, timings


def _check_metrics(metrics: dict[str, Any]) -> None:
    for key, value in metrics.items():
        if not isinstance(key, str) or not isinstance(value, int | float) or isinstance(value, bool):
            raise InvalidInput(f"metric {key!r} must map a name to a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ArtifactError(f"metric {key!r} is not finite", code="invalid_metrics")
