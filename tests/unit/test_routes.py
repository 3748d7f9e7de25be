"""API Gateway's route selection, as the local data plane applies it (pure functions, no emulator)."""

from __future__ import annotations

import pytest

from local_platform.routes import best_match, route_from_api, route_from_key
from model_registry.core import contract

ARN = "arn:aws:lambda:us-east-1:123456789012:function:mlp-iris:live"
KEYS = [
    "ANY /models/{name}/{proxy+}",
    "ANY /models/{name}",
    "POST /models/iris/predict",
    "GET /models/{name}",
    "$default",
]
ROUTES = [route_from_key(key, "f") for key in KEYS]


@pytest.mark.parametrize(
    ("method", "path", "key", "params"),
    [
        ("POST", "/models/iris/predict", "POST /models/iris/predict", {}),  # literal over parameter
        ("PUT", "/models/iris/predict", "ANY /models/{name}/{proxy+}", {"name": "iris", "proxy": "predict"}),
        ("GET", "/models/iris", "GET /models/{name}", {"name": "iris"}),  # a method over ANY
        ("DELETE", "/models/iris", "ANY /models/{name}", {"name": "iris"}),
        (
            "POST",
            "/models/iris/versions/2/predict",
            "ANY /models/{name}/{proxy+}",
            {"name": "iris", "proxy": "versions/2/predict"},
        ),
        ("GET", "/elsewhere", "$default", {"proxy": "elsewhere"}),
        ("GET", "//models///iris//", "GET /models/{name}", {"name": "iris"}),  # empty segments do not count
    ],
)
def test_the_most_specific_route_wins(method: str, path: str, key: str, params: dict[str, str]) -> None:
    matched = best_match(ROUTES, method, path)
    assert matched is not None and (matched[0].route_key, matched[1]) == (key, params)


def test_no_route_is_api_gateways_404() -> None:
    without_default = [r for r in ROUTES if r.route_key != "$default"]
    assert best_match(without_default, "GET", "/") is None
    assert best_match(without_default, "GET", "/models") is None
    assert best_match(without_default, "GET", "/v2/models/iris") is None


def test_a_greedy_variable_needs_at_least_one_segment() -> None:
    assert best_match([route_from_key("ANY /models/{name}/{proxy+}")], "GET", "/models/iris") is None


def test_every_contract_route_selects_itself_for_its_own_paths() -> None:
    routes = [route_from_key(key) for key in contract.route_keys("iris")]
    for path, key in [
        ("/models/iris", "ANY /models/iris"),
        ("/models/iris/predict", "ANY /models/iris/{proxy+}"),
        ("/v2/models/iris", "ANY /v2/models/iris"),
        ("/v2/models/iris/infer", "ANY /v2/models/iris/{proxy+}"),
    ]:
        matched = best_match(routes, "POST", path)
        assert matched is not None and matched[0].route_key == key, path


def test_routes_are_read_from_the_api_and_its_lambda_integrations() -> None:
    integrations = {
        "i1": {"IntegrationUri": ARN, "TimeoutInMillis": 12000},
        "i2": {"IntegrationUri": "https://example.com"},  # not a Lambda integration: no route for it
    }
    route = route_from_api({"RouteKey": "ANY /models/iris", "Target": "integrations/i1"}, integrations)
    assert route is not None
    assert (route.function_name, route.qualifier, route.timeout_s) == ("mlp-iris", "live", 12.0)
    assert route_from_api({"RouteKey": "ANY /x", "Target": "integrations/i2"}, integrations) is None
    assert route_from_api({"RouteKey": "ANY /x", "Target": "integrations/gone"}, integrations) is None
    default = route_from_api({"RouteKey": "$default", "Target": "integrations/i1"}, integrations)
    assert default is not None and default.segments == ("{proxy+}",) and default.method == "ANY"
