"""Reading a plan's tier moves (tooling/tier_moves.py): which models leave or join the dedicated tier,
and the orders that would fail requests. The addresses are Terraform's for this root (the e2e test
tests/e2e/test_tier_moves.py reads real plans)."""

from __future__ import annotations

from typing import Any

from model_registry.core import contract
from tooling.tier_moves import TierMoves, ordering_problems, read_plan


def _route(model: str, template: str, actions: list[str]) -> dict[str, Any]:
    key = f"{model} {template}"
    return {"address": f'module.api.aws_apigatewayv2_route.this["{key}"]', "change": {"actions": actions}}


def _function(model: str, actions: list[str]) -> dict[str, Any]:
    address = f'module.model_endpoint["{model}"].aws_lambda_function.this'
    return {"address": address, "change": {"actions": actions}}


def _routes(model: str, actions: list[str]) -> list[dict[str, Any]]:
    return [_route(model, template, actions) for template in contract.ROUTE_TEMPLATES]


POOL = {"address": "module.pool[0].aws_lambda_function.this", "change": {"actions": ["no-op"]}}


def test_a_drain_a_removal_and_an_arrival_are_told_apart() -> None:
    plan = {
        "resource_changes": [
            POOL,
            *_routes("drained", ["delete"]),
            _function("drained", ["no-op"]),
            *_routes("removed", ["delete"]),
            _function("removed", ["delete"]),
            *_routes("arriving", ["create"]),
            _function("arriving", ["create"]),
            *_routes("replaced", ["delete", "create"]),  # a route re-created (create_before_destroy or not)
            _function("kept", ["update"]),
            *_routes("--pool", ["delete"]),  # the pool's own routes are no model's
        ]
    }
    plan["variables"] = {"models": {"value": {"arriving": {"framework": "onnx", "memory_size": 1024}}}}
    moves = read_plan(plan)
    assert moves.frameworks == {"arriving": "onnx"}
    assert moves.leaving == {"drained", "removed"}
    assert moves.arriving == {"arriving"}
    assert moves.functions_removed == {"removed"}
    assert moves.functions_added == {"arriving"}
    assert moves.pool_after


def test_routes_and_function_removed_together_are_refused_and_a_drain_is_not() -> None:
    removal = read_plan(
        {"resource_changes": [POOL, *_routes("iris", ["delete"]), _function("iris", ["delete"])]}
    )
    [problem] = ordering_problems(removal)
    assert problem.startswith("iris: the plan removes its routes and its function together")
    assert "drain = true" in problem

    drain = read_plan(
        {"resource_changes": [POOL, *_routes("iris", ["delete"]), _function("iris", ["no-op"])]}
    )
    assert ordering_problems(drain) == []
    # the later apply that removes the drained function moves no routes
    assert ordering_problems(read_plan({"resource_changes": [POOL, _function("iris", ["delete"])]})) == []


def test_routes_removed_with_no_pool_after_the_plan_are_refused() -> None:
    pool_going = {"address": POOL["address"], "change": {"actions": ["delete"]}}
    moves = read_plan({"resource_changes": [pool_going, *_routes("iris", ["delete"])]})
    assert not moves.pool_after
    assert any("no pooled tier" in p for p in ordering_problems(moves))
    assert ordering_problems(TierMoves()) == []
