"""Moving a model between the dedicated tier and the pool, against the emulator: a dedicated model's
rollouts keep its registry traffic policy in line with its alias (the pool serves a drained model by it),
a new function serves that policy's version before any rollout, and the deploy checks refuse moves that
would fail requests (tooling/tier_moves.py)."""

from __future__ import annotations

from examples.models import ExampleModel
from model_registry.core.records import TrafficPolicy
from model_registry.rollout import Rollouts
from model_registry.serving.server import ModelServer
from tooling.tier_moves import TierMoves, registry_problems

LEAVING = TierMoves(routes_removed=frozenset({"iris"}), pool_after=True)
ARRIVING = TierMoves(routes_added=frozenset({"iris"}), functions_added=frozenset({"iris"}), pool_after=True)


def _policy(rollouts: Rollouts) -> tuple[int | None, int | None, float]:
    policy = rollouts.service.store.summary("iris").policy
    return policy.stable, policy.canary, policy.canary_weight


def test_dedicated_rollouts_keep_the_registry_policy_in_line_with_the_alias(rollouts: Rollouts) -> None:
    assert _policy(rollouts) == (1, None, 0.0)  # pinned at the first registration
    rollouts.deploy("iris", 3)
    assert _policy(rollouts) == (3, None, 0.0)
    rollouts.start_canary("iris", 2, 20)
    assert _policy(rollouts) == (3, 2, 0.2)
    rollouts.promote("iris")
    assert _policy(rollouts) == (2, None, 0.0)
    rollouts.rollback("iris")
    assert _policy(rollouts) == (3, None, 0.0)


def test_an_unpinned_function_serves_the_policys_version_not_the_latest(rollouts: Rollouts) -> None:
    """What a function Terraform just created (MODEL_VERSION=latest) serves: the pool's version."""
    store = rollouts.service.store
    assert ModelServer(rollouts.service, "iris", pin=None).load_pinned().version == 1  # 3 registered
    store.set_policy("iris", TrafficPolicy(stable=2), expected_revision=store.summary("iris").policy.revision)
    assert ModelServer(rollouts.service, "iris", pin=None).load_pinned().version == 2


def test_a_model_leaves_its_function_only_for_a_version_the_pool_can_run(
    rollouts: Rollouts, examples: dict[str, ExampleModel]
) -> None:
    said: list[str] = []
    rollouts.deploy("iris", 2)
    problems = registry_problems(LEAVING, rollouts.service.store, rollouts.traffic, said.append)
    assert len(problems) == 1 and "version 2, which its function serves, has no ONNX form" in problems[0]

    rollouts.service.optimize("iris", 2, examples["iris"].X_test)
    store = rollouts.service.store
    # a policy out of line (written before rollouts kept it in line): brought to what the function serves
    store.set_policy("iris", TrafficPolicy(stable=1), expected_revision=store.summary("iris").policy.revision)
    assert registry_problems(LEAVING, store, rollouts.traffic, said.append) == []
    assert _policy(rollouts) == (2, None, 0.0)
    assert said == ["iris: registry traffic policy set to v2, the version its function serves"]


def test_no_model_changes_tier_with_a_canary_in_flight(rollouts: Rollouts) -> None:
    rollouts.deploy("iris", 1)
    rollouts.start_canary("iris", 2, 10)
    [problem] = registry_problems(LEAVING, rollouts.service.store, rollouts.traffic, print)
    assert "a canary is live on its function" in problem

    rollouts.promote("iris")
    store = rollouts.service.store
    store.set_policy(  # as a pooled rollout leaves it
        "iris", TrafficPolicy(stable=2, canary=3, canary_weight=0.1), store.summary("iris").policy.revision
    )
    [problem] = registry_problems(ARRIVING, store, rollouts.traffic, print)
    assert "a canary (v3) is live in the pool" in problem


def test_a_model_gets_a_function_only_with_a_layer_that_loads_the_pools_version(
    rollouts: Rollouts, examples: dict[str, ExampleModel]
) -> None:
    store = rollouts.service.store

    def arriving(layer: str) -> list[str]:
        moves = TierMoves(
            routes_added=frozenset({"iris"}),
            functions_added=frozenset({"iris"}),
            pool_after=True,
            frameworks={"iris": layer},
        )
        return registry_problems(moves, store, rollouts.traffic, print)

    assert arriving("sklearn") == []
    [problem] = arriving("xgboost")
    assert "version 1, which the pool serves, is a sklearn model" in problem
    assert problem.endswith('set its framework to "sklearn"')
    assert len(arriving("onnx")) == 1  # no ONNX form yet
    rollouts.service.optimize("iris", 1, examples["iris"].X_test)
    assert arriving("onnx") == []
    assert arriving("xgboost")[0].endswith('"sklearn" (or "onnx": it has an ONNX form)')
