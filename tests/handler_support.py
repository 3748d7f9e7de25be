"""Drive the real Lambda handler in-process with payload-2.0 events against the moto server."""

from __future__ import annotations

import importlib
import json
import os
import sys
from types import ModuleType
from typing import Any

from local_platform.events import HttpResult, LambdaContext, build_event, map_result
from local_platform.routes import best_match, route_from_key
from model_registry.core import aws, contract
from model_registry.core.settings import Settings


def handler_env(settings: Settings, model_name: str, pin: str = "latest", **extra: str) -> dict[str, str]:
    """The environment Terraform gives the function of ``model_name`` (tracing off)."""
    return {
        contract.ENV_TABLE: settings.table_name,
        contract.ENV_BUCKET: settings.bucket_name,
        contract.ENV_ENDPOINT_URL: settings.endpoint_url or "",
        contract.ENV_REGION: settings.region,
        contract.ENV_MODEL_NAME: model_name,
        contract.ENV_MODEL_VERSION: pin,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "ModelPlatformTest",
        **extra,
    }


def load_handler(settings: Settings, model_name: str, pin: str = "latest", **extra: str) -> ModuleType:
    """Import functions.handler afresh with a Lambda-like environment for ``model_name``."""
    os.environ.update(handler_env(settings, model_name, pin, **extra))
    aws.reset()
    sys.modules.pop("functions.handler", None)
    return importlib.import_module("functions.handler")


def route_key_for(model_name: str, path: str, method: str) -> tuple[str, dict[str, str]]:
    """The route key and path parameters API Gateway would match for ``path`` (contract routes)."""
    matched = best_match([route_from_key(k) for k in contract.route_keys(model_name)], method, path)
    return (matched[0].route_key, matched[1]) if matched else ("$default", {})


def call(
    handler: ModuleType,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> HttpResult:
    """Send one request through the handler the way API Gateway would."""
    path, _, query = path.partition("?")
    parts = path.split("/")
    model = (parts[3] if path.startswith("/v2/models/") else parts[2] if len(parts) > 2 else "") or "pool"
    route_key, params = route_key_for(model, path, method)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    hdrs = {"content-type": "application/json", **(headers or {})} if data else dict(headers or {})
    event = build_event(
        method=method,
        path=path,
        route_key=route_key,
        path_parameters=params,
        headers=hdrs,
        body=data,
        query=query,
    )
    context = LambdaContext(
        f"mlp-{model}", "1", f"arn:aws:lambda:us-east-1:123456789012:function:mlp-{model}:live", 1024, 30
    )
    return map_result(handler.lambda_handler(event, context))
