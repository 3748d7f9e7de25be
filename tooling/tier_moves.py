"""Moving models between the dedicated tier and the pool without losing a request.

A Terraform plan that changes the ``models`` map moves models between the tiers: a model added gets its
own routes, which win over the pool's catch-all ones; a model drained (``drain = true``) or removed loses
them, and the pool answers it. An HTTP API stage serves a deployment, a snapshot of the API that takes
effect after the change (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-stages.html),
so for a while requests still reach the target a route had. The checks here, run on the saved plan before
it is applied, keep such a request from failing:

- a model's routes and its function are not removed by one apply (drain first, remove on a later apply);
- a model leaving its function goes to a pool that exists, with no canary in flight, to versions the pool
  can run (an ONNX form), and the registry's traffic policy names what its function served;
- a model arriving from the pool has no canary in flight there (its new function serves only the
  policy's stable version until a rollout), and that version is one its layer can load.

The plan's reading is pure (:func:`read_plan`, :func:`ordering_problems`); :func:`registry_problems`
reads the registry and the functions' aliases and brings the policy of a leaving model in line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model_registry.core import contract
from model_registry.core.errors import ModelNotFound, RolloutError
from model_registry.core.records import ModelVersion
from model_registry.registry.store import RegistryStore
from model_registry.rollout.pooled import PolicyTraffic
from model_registry.rollout.traffic import LambdaTraffic
from model_registry.serving.pool import poolable

_FUNCTION = re.compile(r'^module\.model_endpoint\["([^"]+)"\]\.aws_lambda_function\.this$')
_ROUTE = re.compile(r'^module\.api\.aws_apigatewayv2_route\.this\["([^" ]+) ')
_POOL_FUNCTION = "module.pool[0].aws_lambda_function.this"
_POOL_KEY = "--pool"  # the api module's key for the pool's routes (no model name can start with "-")

Say = Callable[[str], None]


@dataclass(frozen=True)
class TierMoves:
    """What one plan does to the models' routes and functions."""

    routes_removed: frozenset[str] = frozenset()
    routes_added: frozenset[str] = frozenset()
    functions_removed: frozenset[str] = frozenset()
    functions_added: frozenset[str] = frozenset()
    pool_after: bool = False  # whether the pool's function exists once the plan is applied
    frameworks: Mapping[str, str] = field(default_factory=dict)  # each model's layer in the models map

    @property
    def leaving(self) -> frozenset[str]:
        """Models whose own routes go: the pool answers them afterwards."""
        return self.routes_removed - self.routes_added

    @property
    def arriving(self) -> frozenset[str]:
        """Models that get their own routes: their function answers them afterwards."""
        return self.routes_added - self.routes_removed


def read_plan(plan: Mapping[str, Any]) -> TierMoves:
    """The tier moves in ``terraform show -json`` of a saved plan."""
    sets: dict[str, set[str]] = {"routes-": set(), "routes+": set(), "functions-": set(), "functions+": set()}
    pool_after = False
    for change in plan.get("resource_changes", []):
        address, actions = change["address"], change["change"]["actions"]
        removed = "delete" in actions and "create" not in actions
        added = "create" in actions and "delete" not in actions
        if address == _POOL_FUNCTION:
            pool_after = not removed
        if not (removed or added):
            continue
        sign = "-" if removed else "+"
        if (route := _ROUTE.match(address)) and route.group(1) != _POOL_KEY:
            sets[f"routes{sign}"].add(route.group(1))
        elif function := _FUNCTION.match(address):
            sets[f"functions{sign}"].add(function.group(1))
    models = plan.get("variables", {}).get("models", {}).get("value") or {}
    return TierMoves(
        frozenset(sets["routes-"]),
        frozenset(sets["routes+"]),
        frozenset(sets["functions-"]),
        frozenset(sets["functions+"]),
        pool_after,
        {name: str(entry.get("framework", "")) for name, entry in models.items()},
    )


def ordering_problems(moves: TierMoves) -> list[str]:
    """Moves the plan makes in an order that can fail requests, whatever the registry holds."""
    problems = [
        f"{model}: the plan removes its routes and its function together; requests API Gateway still "
        "routes to the function would fail. Set drain = true on its entry and apply (the pool answers it), "
        "then remove the entry on a later apply"
        for model in sorted(moves.leaving & moves.functions_removed)
    ]
    if moves.leaving and not moves.pool_after:
        problems.append(
            f"{', '.join(sorted(moves.leaving))}: the plan removes their routes but leaves no pooled tier "
            "to answer them (pool.enabled = false)"
        )
    return problems


def registry_problems(
    moves: TierMoves,
    store: RegistryStore,
    dedicated: LambdaTraffic,
    say: Say,
) -> list[str]:
    """Checks of the models the plan moves against what they serve now; a leaving model's registry
    policy is set to what its function serves, so the pool serves the same version."""
    problems: list[str] = []
    pool = PolicyTraffic(store, dedicated.platform_name)
    for model in sorted(moves.leaving - moves.functions_removed):
        try:
            summary = store.summary(model)
        except ModelNotFound:
            continue  # nothing registered: nothing served, nothing to lose
        try:
            state = dedicated.alias_state(model)
        except RolloutError:
            continue  # no function: its routes are the only thing going
        if state.canary_version:
            problems.append(
                f"{model}: a canary is live on its function; promote or roll it back before it leaves "
                "the dedicated tier"
            )
            continue
        pinned = dedicated.pinned_model_version(model, state.stable_version)
        version = int(pinned) if pinned.isdigit() else summary.serving_version
        if not poolable(store.get_version(model, version)):
            problems.append(
                f"{model}: version {version}, which its function serves, has no ONNX form and the pool runs "
                f"ONNX only: `modelctl optimize {model} {version}` first, or keep its routes"
            )
            continue
        if pool.follow(model, version, None, 0.0):
            say(f"{model}: registry traffic policy set to v{version}, the version its function serves")
    for model in sorted(moves.arriving):
        try:
            summary = store.summary(model)
        except ModelNotFound:
            continue
        if summary.policy.canary is not None:
            problems.append(
                f"{model}: a canary (v{summary.policy.canary}) is live in the pool; promote or roll it back "
                "before the model gets its own function (which starts on the stable version only)"
            )
            continue
        layer = moves.frameworks.get(model, "")
        record = store.get_version(model, summary.serving_version)
        if layer and not loadable(record, layer):
            problems.append(
                f"{model}: version {record.version}, which the pool serves, is a {record.framework} model "
                f"that a function with the {layer} layer cannot load: set its framework to "
                f'"{record.framework}"' + (' (or "onnx": it has an ONNX form)' if poolable(record) else "")
            )
    return problems


def loadable(record: ModelVersion, layer: str) -> bool:
    """Whether a dedicated function with ``layer`` can load this version: its own framework's layer,
    or the ONNX layer when the version has an ONNX form."""
    return record.framework == layer or (layer == contract.POOL_FRAMEWORK and poolable(record))
