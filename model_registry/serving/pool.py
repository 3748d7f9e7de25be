"""The pooled tier's serving core: any registered model with an ONNX form, loaded on first use into one
LRU cache bounded by bytes, its version chosen by the traffic policy kept in the registry.

One function serves the long tail of models this way (no Terraform change per model); the dedicated
functions keep serving the models in Terraform's ``models`` map. Pure of AWS except through
:class:`~model_registry.registry.loading.ModelSource`.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from model_registry.core import contract
from model_registry.core.errors import InvalidInput, ModelNotFound, RegistryError
from model_registry.core.records import ModelVersion
from model_registry.registry.loading import ModelSource
from model_registry.registry.store import ModelSummary
from model_registry.serving.server import ModelServer, ServedModel

# Bytes of cache per byte of serialized artifact: a loaded ONNX session holds about its graph's size
# (tree ensembles), so the artifact size is the measure of what a model costs in memory.
DEFAULT_CACHE_FRACTION = 0.5
MAX_SERVERS = 4096  # per-model request handlers kept (cheap objects: no model in them)


class NotPoolable(RegistryError):
    """A version the pooled tier cannot run: it has no ONNX form."""

    status, code = 422, "not_poolable"


def cache_budget(memory_mb: int, fraction: float = DEFAULT_CACHE_FRACTION) -> int:
    """Bytes of models the pool keeps loaded in a function of ``memory_mb``."""
    return max(1, int(memory_mb * 1024 * 1024 * fraction))


def poolable(record: ModelVersion) -> bool:
    """Whether the pooled tier can serve this version: it carries a validated ONNX form."""
    return record.optimized is not None and record.optimized.artifact_format == contract.POOL_FRAMEWORK


@dataclass(frozen=True)
class PoolStats:
    """What the cache did since the environment started."""

    hits: int
    misses: int
    evictions: int
    loaded_bytes: int
    loaded_models: int
    budget_bytes: int


@dataclass
class _Entry:
    served: ServedModel
    size: int


class ModelPool:
    """Serves any registered model: versions chosen by each model's traffic policy (read from the
    registry, cached ``policy_ttl_s``), loaded models kept in an LRU cache of ``budget_bytes``."""

    def __init__(
        self,
        source: ModelSource,
        budget_bytes: int,
        *,
        policy_ttl_s: float = 5.0,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.budget_bytes = budget_bytes
        self.policy_ttl_s = policy_ttl_s
        self._draw = draw
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: OrderedDict[tuple[str, int], _Entry] = OrderedDict()
        self._loaded_bytes = 0
        self._summaries: dict[str, tuple[float, ModelSummary | ModelNotFound]] = {}
        self._servers: OrderedDict[str, ModelServer] = OrderedDict()
        self._hits = self._misses = self._evictions = 0

    # ------------------------------------------------------------------ reading the registry

    @staticmethod
    def check_name(model_name: str) -> None:
        """A name in a URL that no model can have is a model that does not exist (404), as API Gateway
        answers for a path no route matches; not a malformed request."""
        if not re.fullmatch(contract.MODEL_NAME_PATTERN, model_name):
            raise ModelNotFound(f"model {model_name[:60]!r} is not registered")

    def summary(self, model_name: str) -> ModelSummary:
        """The model's summary (latest version, traffic policy), at most ``policy_ttl_s`` old; unknown
        names are remembered as long, so a client probing names costs one registry read per name."""
        self.check_name(model_name)
        now = self._clock()
        cached = self._summaries.get(model_name)
        if cached is None or now - cached[0] >= self.policy_ttl_s:
            try:
                found: ModelSummary | ModelNotFound = self.source.store.summary(model_name, consistent=False)
            except ModelNotFound as missing:
                found = missing
            if len(self._summaries) >= MAX_SERVERS * 4:
                self._summaries.clear()  # a crude bound; entries are re-read within policy_ttl_s anyway
            self._summaries[model_name] = cached = (now, found)
        if isinstance(cached[1], ModelNotFound):
            raise cached[1]
        return cached[1]

    def server(self, model_name: str) -> ModelServer:
        """The request handler of one model (predict, metadata); holds no model itself."""
        self.check_name(model_name)
        with self._lock:
            server = self._servers.get(model_name)
            if server is not None:
                self._servers.move_to_end(model_name)
                return server
            server = ModelServer(self.source, model_name, pin=None, cache_size=0)
            self._servers[model_name] = server
            while len(self._servers) > MAX_SERVERS:
                self._servers.popitem(last=False)
            return server

    # ------------------------------------------------------------------ serving

    def choose(self, model_name: str, version: int | None) -> tuple[int, ModelSummary]:
        """The version that answers: the requested one, else the policy's pick."""
        summary = self.summary(model_name)
        if version is not None:
            return version, summary
        return summary.policy.choose(self._draw(), summary.latest_version), summary

    def get(self, model_name: str, version: int) -> ServedModel:
        """Version ``version`` of the model, loaded (and verified) on first use."""
        key = (model_name, version)
        with self._lock:
            entry = self._loaded.get(key)
            if entry is not None:
                self._loaded.move_to_end(key)
                self._hits += 1
                return entry.served
            self._misses += 1
        record = self.source.store.get_version(model_name, version)
        if not poolable(record):
            raise NotPoolable(
                f"version {version} of {model_name!r} has no ONNX form, which is what the pooled tier "
                "serves: register it with --optimize (scikit-learn, XGBoost and LightGBM models), or give "
                f"{model_name!r} a dedicated function in terraform's models map"
            )
        assert record.optimized is not None
        loaded_record, model, timings = self.source.load(model_name, version, record)
        served = ServedModel(loaded_record, model, timings)
        self._insert(key, served, record.optimized.size_bytes)
        return served

    def _insert(self, key: tuple[str, int], served: ServedModel, size: int) -> None:
        evicted: list[_Entry] = []
        with self._lock:
            if key in self._loaded:  # loaded meanwhile by another thread: keep one
                return
            self._loaded[key] = _Entry(served, size)
            self._loaded_bytes += size
            # The newest stays even alone over the budget: a model larger than the cache still serves.
            while self._loaded_bytes > self.budget_bytes and len(self._loaded) > 1:
                _, entry = self._loaded.popitem(last=False)
                self._loaded_bytes -= entry.size
                self._evictions += 1
                evicted.append(entry)
        del evicted  # dropped outside the lock: freeing a model's memory can take a moment

    def loaded(self, model_name: str, version: int) -> bool:
        with self._lock:
            return (model_name, version) in self._loaded

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                self._hits,
                self._misses,
                self._evictions,
                self._loaded_bytes,
                len(self._loaded),
                self.budget_bytes,
            )


def check_page_size(text: str | None, default: int = 100) -> int:
    """``?limit=`` of ``GET /models``: 1 to 1000."""
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1000:
        raise InvalidInput(f"limit must be a whole number from 1 to 1000, got {text[:20]!r}")
    return int(text)
