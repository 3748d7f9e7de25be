"""The pooled tier's core against in-process moto: version choice by traffic policy, ONNX only, the
byte-bounded LRU cache, the policy cache, and the catalog's pages. Tiny models trained in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from model_registry.core.errors import ConflictError, ModelNotFound
from model_registry.core.records import ModelVersion, TrafficPolicy
from model_registry.registry.service import RegistryService
from model_registry.serving.pool import ModelPool, NotPoolable, cache_budget

X, Y = load_iris(return_X_y=True)


def _register(
    service: RegistryService, tmp_path: Path, name: str, c: float = 1.0, optimize: bool = True
) -> ModelVersion:
    model = LogisticRegression(C=c, max_iter=300).fit(X, Y)
    path = tmp_path / f"{name}-{c}.skops"
    sio.dump(model, path)
    return service.register(name, path, progress=False, optimize_rows=X[:40] if optimize else None)


def test_the_policy_picks_stable_or_canary_by_weight() -> None:
    assert TrafficPolicy().choose(0.0, latest=7) == 7  # no policy: the latest version
    split = TrafficPolicy(stable=3, canary=4, canary_weight=0.2)
    assert [split.choose(d, latest=9) for d in (0.0, 0.19, 0.2, 0.99)] == [4, 4, 3, 3]


def test_the_pool_serves_onnx_versions_and_refuses_the_rest(service: RegistryService, tmp_path: Path) -> None:
    record = _register(service, tmp_path, "iris")
    _register(service, tmp_path, "native", optimize=False)
    pool = ModelPool(service, budget_bytes=10**6)
    version, _ = pool.choose("iris", None)
    served = pool.get("iris", version)
    native = sio.load(
        tmp_path / "iris-1.0.skops", trusted=sio.get_untrusted_types(file=tmp_path / "iris-1.0.skops")
    )
    assert served.model.framework == "onnx" and version == record.version
    assert np.array_equal(served.model.predict(X[:20]), native.predict(X[:20]))
    with pytest.raises(NotPoolable, match="--optimize") as refused:
        pool.get("native", 1)
    assert refused.value.status == 422
    with pytest.raises(ModelNotFound):
        pool.choose("unknown", None)


def test_the_cache_is_bounded_by_bytes_and_evicts_the_least_recently_used(
    service: RegistryService, tmp_path: Path
) -> None:
    sizes = {name: _register(service, tmp_path, name).optimized.size_bytes for name in ("a", "b", "c")}  # type: ignore[union-attr]
    pool = ModelPool(service, budget_bytes=sizes["a"] + sizes["b"])
    pool.get("a", 1), pool.get("b", 1), pool.get("a", 1)  # a is now the most recent
    pool.get("c", 1)  # over budget: b goes
    assert [pool.loaded(n, 1) for n in "abc"] == [True, False, True]
    stats = pool.stats()
    assert (stats.hits, stats.misses, stats.evictions, stats.loaded_models) == (1, 3, 1, 2)
    assert stats.loaded_bytes == sizes["a"] + sizes["c"] <= stats.budget_bytes
    tiny = ModelPool(service, budget_bytes=1)  # a model over the budget still serves, alone
    tiny.get("a", 1), tiny.get("b", 1)
    assert tiny.stats().loaded_models == 1 and tiny.loaded("b", 1)
    assert cache_budget(2048, 0.5) == 1024 * 1024 * 1024


def test_a_policy_change_reaches_the_pool_within_its_ttl(service: RegistryService, tmp_path: Path) -> None:
    for c in (1.0, 0.5):
        _register(service, tmp_path, "iris", c)
    now = [0.0]
    pool = ModelPool(service, budget_bytes=10**6, policy_ttl_s=5, draw=lambda: 0.1, clock=lambda: now[0])
    assert pool.choose("iris", None)[0] == 1  # the first version stays until a rollout moves it
    stored = service.store.set_policy("iris", TrafficPolicy(stable=1, canary=2, canary_weight=0.25), 0)
    assert stored.revision == 1
    assert pool.choose("iris", None)[0] == 1  # cached: still the old answer
    now[0] = 5.0
    version, summary = pool.choose("iris", None)
    assert (version, summary.policy) == (2, stored)  # draw 0.1 < 0.25: the canary
    assert pool.choose("iris", 1)[0] == 1  # an explicit version is served as asked
    with pytest.raises(ConflictError, match="changed during this operation"):
        service.store.set_policy("iris", TrafficPolicy(stable=2), expected_revision=0)  # a stale read


def test_models_are_listed_in_pages_by_name(service: RegistryService, tmp_path: Path) -> None:
    names = ["m-e", "m-a", "m-d", "m-b", "m-c"]
    for name in names:
        _register(service, tmp_path, name, optimize=name == "m-c")
    first = service.store.page_models(limit=2)
    second = service.store.page_models(limit=2, next_token=first.next_token)
    last = service.store.page_models(limit=2, next_token=second.next_token)
    pages = [[m.model_name for m in p.models] for p in (first, second, last)]
    assert pages == [["m-a", "m-b"], ["m-c", "m-d"], ["m-e"]] and last.next_token is None
    assert [m.model_name for m in service.store.list_models()] == sorted(names)
    assert {m.model_name: m.onnx_versions for m in second.models} == {
        "m-c": frozenset({1}),
        "m-d": frozenset(),
    }
