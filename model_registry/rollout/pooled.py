"""The pooled tier's side of a rollout: the "alias" is the model's traffic policy in the registry
(stable version, canary version, weight), which the pooled function reads with a short cache.

Same interface as :class:`~model_registry.rollout.traffic.LambdaTraffic`, so the planner, the lock, the
journal, the gate and ``modelctl`` treat both tiers alike. Versions here are model versions; there is
nothing to publish, activate, provision or prune.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from model_registry.core import contract
from model_registry.core.errors import ConflictError, RolloutError
from model_registry.core.records import TrafficPolicy
from model_registry.registry.store import RegistryStore
from model_registry.rollout.plan import AliasState
from model_registry.serving.pool import poolable


class PolicyTraffic:
    """Traffic of the models the pooled function serves, through their registry policy."""

    pooled = True

    def __init__(self, store: RegistryStore, platform_name: str) -> None:
        self.store = store
        self.platform_name = platform_name

    def function_name(self, model_name: str) -> str:
        return contract.pool_function_name(self.platform_name)

    def alias_state(self, model_name: str) -> AliasState:
        """The policy as an alias state: model versions as strings, the policy revision as revision id."""
        summary = self.store.summary(model_name)
        policy = summary.policy
        return AliasState(
            str(summary.serving_version),
            str(policy.canary) if policy.canary else None,
            policy.canary_weight if policy.canary else 0.0,
            str(policy.revision),
        )

    def pinned_model_version(self, model_name: str, version: str) -> str:
        return version

    def publish(self, model_name: str, model_version: int) -> str:
        """Nothing to publish: the version must be one the pool can run (an ONNX form)."""
        record = self.store.get_version(model_name, model_version)
        if not poolable(record):
            raise RolloutError(
                f"version {model_version} of {model_name!r} has no ONNX form, and {model_name!r} is served "
                "by the pooled tier, which runs ONNX only: `modelctl optimize` it, or give the model a "
                "dedicated function in terraform's models map. Nothing was changed"
            )
        return str(model_version)

    def ensure_active(self, function_name: str, version: str) -> None:
        """Pooled versions load on first use: always ready to take traffic."""

    def set_alias(self, model_name: str, target: AliasState, revision_id: str) -> None:
        """Store the policy if nobody changed it since ``revision_id`` was read."""
        policy = TrafficPolicy(
            stable=int(target.stable_version),
            canary=int(target.canary_version) if target.canary_version else None,
            canary_weight=target.canary_weight if target.canary_version else 0.0,
        )
        try:
            self.store.set_policy(model_name, policy, expected_revision=int(revision_id or 0))
        except ConflictError as exc:
            raise RolloutError(exc.message) from exc

    def follow(self, model_name: str, stable: int, canary: int | None, canary_weight: float) -> bool:
        """Make the policy name the versions a dedicated model's alias serves, so the pool serves the same
        ones if the model leaves its function (``drain`` in terraform's models map). Whether it changed."""
        current = self.store.summary(model_name).policy
        wanted = TrafficPolicy(stable, canary, round(canary_weight, 4) if canary else 0.0, current.revision)
        if replace(current, canary_weight=round(current.canary_weight, 4)) == wanted:
            return False
        self.store.set_policy(model_name, wanted, expected_revision=current.revision)
        return True

    # Pooled models have no Lambda versions of their own: no provisioned concurrency, nothing to prune.

    def wanted_provisioned(self, model_name: str) -> int:
        return 0

    def provisioned(self, model_name: str) -> dict[str, int]:
        return {}

    def reserved_concurrency(self, model_name: str) -> int | None:
        return None

    def provision(self, model_name: str, plan: Mapping[str, int], current: Mapping[str, int]) -> None:
        """Nothing to provision."""

    def release(self, model_name: str, versions: list[str]) -> None:
        """Nothing to release."""

    def published_versions(self, model_name: str) -> list[int]:
        return []

    def delete_version(self, model_name: str, version: str) -> None:
        raise AssertionError("pooled models have no Lambda versions to delete")
