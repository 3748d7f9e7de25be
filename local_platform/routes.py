"""API Gateway HTTP API routing, as pure functions: route keys parsed from the API's routes and
integrations, and the most specific route for a request (exact segments over parameters over greedy
``{proxy+}``, a method over ``ANY``; ``$default`` last), as
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html describes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_FUNCTION_ARN = re.compile(r"arn:[^:]+:lambda:[^:]+:\d+:function:([^:/]+)(?::([^:/]+))?")


@dataclass(frozen=True)
class Route:
    """One route of the HTTP API and what it integrates with."""

    method: str
    segments: tuple[str, ...]
    route_key: str
    function_name: str
    qualifier: str | None
    integration_arn: str
    timeout_s: float

    def match(self, method: str, parts: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """A specificity score and the path parameters, or None when the route does not match."""
        if self.method not in ("ANY", method):
            return None
        params: dict[str, str] = {}
        literals = 0
        for index, segment in enumerate(self.segments):
            if segment.endswith("+}"):
                if index >= len(parts):
                    return None
                params[segment[1:-2]] = "/".join(parts[index:])
                return (0, literals, index, int(self.method != "ANY")), params
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = parts[index]
            elif segment != parts[index]:
                return None
            else:
                literals += 1
        if len(parts) != len(self.segments):
            return None
        return (1, literals, len(self.segments), int(self.method != "ANY")), params


def route_from_key(
    route_key: str,
    function_name: str = "",
    qualifier: str | None = None,
    integration_arn: str = "",
    timeout_s: float = 30.0,
) -> Route:
    """A Route from its route key (``"ANY /models/{name}/{proxy+}"``, ``"$default"``)."""
    if route_key == "$default":
        return Route("ANY", ("{proxy+}",), route_key, function_name, qualifier, integration_arn, timeout_s)
    method, _, path = route_key.partition(" ")
    segments = tuple(s for s in path.split("/") if s)
    return Route(method, segments, route_key, function_name, qualifier, integration_arn, timeout_s)


def route_from_api(route: Mapping[str, Any], integrations: Mapping[str, Mapping[str, Any]]) -> Route | None:
    """The Route for one item of GetRoutes, given GetIntegrations' items by id; None when it does not
    integrate with a Lambda function."""
    integration = integrations.get(str(route.get("Target", "")).removeprefix("integrations/"))
    if integration is None:
        return None
    match = _FUNCTION_ARN.search(integration.get("IntegrationUri", ""))
    if match is None:
        return None
    return route_from_key(
        route["RouteKey"],
        match.group(1),
        match.group(2),
        integration["IntegrationUri"],
        integration.get("TimeoutInMillis", 30000) / 1000,
    )


def best_match(routes: Iterable[Route], method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    """The most specific route for a request and its path parameters, or None (API Gateway's 404)."""
    parts = [p for p in raw_path.split("/") if p]
    best: tuple[tuple[int, ...], Route, dict[str, str]] | None = None
    for route in routes:
        matched = route.match(method, parts)
        if matched and (best is None or matched[0] > best[0]):
            best = (matched[0], route, matched[1])
    return None if best is None else (best[1], best[2])
