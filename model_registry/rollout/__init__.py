"""Traffic control for the dedicated functions: canaries, promotions, rollbacks, progressive rollouts.

- :mod:`.plan`: the pure planner (next alias state, provisioned concurrency, the gate's verdict) and the
  typed results (:class:`RolloutEvent`, :class:`ProgressiveResult`).
- :mod:`.traffic`: the Lambda API calls (alias, publish, states, provisioned concurrency).
- :mod:`.health`: the gate's CloudWatch reads.
- :mod:`.orchestrator`: :class:`Rollouts`, which plans, locks, carries out and journals each operation.

Runs on an operator's machine; not part of the function zip.
"""

from model_registry.rollout.orchestrator import ModelStatus, Rollouts, VersionStatus
from model_registry.rollout.plan import (
    AliasState,
    Gate,
    Health,
    Move,
    ProgressiveResult,
    RolloutEvent,
    peak_provisioned,
    provisioned_plan,
)

__all__ = [
    "AliasState",
    "Gate",
    "Health",
    "ModelStatus",
    "Move",
    "ProgressiveResult",
    "RolloutEvent",
    "Rollouts",
    "VersionStatus",
    "peak_provisioned",
    "provisioned_plan",
]
