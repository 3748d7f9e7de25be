"""The read side of the registry: look a model version up, fetch its artifact, verify its sha256 and
deserialise it. This is what the Lambda function ships; registering is :mod:`.service`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Self

from model_registry.core import aws
from model_registry.core.records import ModelVersion
from model_registry.core.settings import Settings
from model_registry.registry.artifacts import ArtifactStore, verify
from model_registry.registry.store import RegistryStore
from model_registry.serving.loaders import LoadedModel, load_model, runtime_available


@dataclass(frozen=True)
class LoadTimings:
    """Where a model load spent its time, in milliseconds."""

    registry_ms: float
    fetch_ms: float
    verify_ms: float
    load_ms: float


class ModelSource:
    """Registered model versions, read back verified: the registry and the artifact store together."""

    def __init__(self, settings: Settings, store: RegistryStore, artifacts: ArtifactStore) -> None:
        self.settings = settings
        self.store = store
        self.artifacts = artifacts

    @classmethod
    def from_settings(cls, settings: Settings | None = None, profile: str = "operator") -> Self:
        """Build the service with cached clients for ``settings`` (default: from the environment) and the
        timeouts of ``profile`` (``serving`` in the Lambda handler, see :mod:`model_registry.core.aws`)."""
        settings = settings or Settings.from_env()
        return cls(
            settings,
            RegistryStore(settings.table_name, aws.client_for("dynamodb", settings, profile)),
            ArtifactStore(settings.bucket_name, aws.client_for("s3", settings, profile)),
        )

    def fetch_verified(self, record: ModelVersion) -> bytes:
        """The artifact bytes of ``record``, checked against its sha256."""
        return self.artifacts.download_verified(record.s3_key, record.sha256)

    def load(
        self, model_name: str, version: int, record: ModelVersion | None = None
    ) -> tuple[ModelVersion, LoadedModel, LoadTimings]:
        """Look up (unless ``record`` is given), fetch, verify and deserialise one version."""
        start = time.perf_counter()
        record = record or self.store.get_version(model_name, version)
        looked_up = time.perf_counter()
        # The optimized form when the version has one and this process can run it, else the native one.
        optimized = record.optimized
        if optimized is not None and runtime_available(optimized.artifact_format):
            key, sha256, artifact_format = optimized.s3_key, optimized.sha256, optimized.artifact_format
        else:
            key, sha256, artifact_format = record.s3_key, record.sha256, record.artifact_format
        data = self.artifacts.download(key)
        fetched = time.perf_counter()
        verify(key, data, sha256)
        verified = time.perf_counter()
        model = load_model(
            data, artifact_format, allow_pickle=self.settings.allow_pickle, signature=record.signature
        )
        loaded = time.perf_counter()
        timings = LoadTimings(
            registry_ms=(looked_up - start) * 1000,
            fetch_ms=(fetched - looked_up) * 1000,
            verify_ms=(verified - fetched) * 1000,
            load_ms=(loaded - verified) * 1000,
        )
        return record, model, timings
