"""The emulator: moto server plus the Lambda APIs for warm starts, which moto does not implement.

``python -m model_registry.local.moto_extensions -H 127.0.0.1 -p PORT`` runs moto's own server with:

- Put/Get/Delete/ListProvisionedConcurrencyConfigs added to its Lambda service, so rollouts run the
  same calls locally as on AWS. A config is reported READY at once; the local data plane reads the
  configs and keeps that many execution environments of the version initialised.
- A function's ``SnapStart`` setting kept and reported (moto drops it and always answers ``Off``,
  which Terraform would see as drift), with ``OptimizationStatus: On`` for published versions, as
  Lambda reports it. The local data plane restores such versions from a snapshot.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PATH = r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[^/]+)/provisioned-concurrency/?$"
_FUNCTION = re.compile(r"/functions/([^/]+)/provisioned-concurrency")
_REGION = re.compile(r"Credential=[^/]+/\d+/([^/]+)/")
_CONFIGS: dict[tuple[str, str, str], dict[str, Any]] = {}  # (region, function, qualifier) -> config
_LOCK = threading.Lock()

Response = tuple[int, dict[str, str], str]


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"Type": "User", "Message": message})
    return status, {"x-amzn-ErrorType": error_type, "Content-Type": "application/json"}, body


def _ok(status: int, body: dict[str, Any] | None) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(body) if body is not None else ""


def _version_arn(region: str, function: str, qualifier: str) -> str | None:
    """The qualified ARN of an existing published version or alias, else None."""
    from moto.awslambda.models import lambda_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    try:
        found = lambda_backends[DEFAULT_ACCOUNT_ID][region].get_function(function, qualifier)
    except Exception:  # moto raises its own not-found types
        return None
    return f"{found.function_arn.split(':function:')[0]}:function:{function}:{qualifier}"


def provisioned_concurrency(request: Any, full_url: str, headers: Any) -> Response:
    """Dispatch one provisioned-concurrency call (the Lambda REST API, 2019-09-30)."""
    url = urlsplit(full_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    match = _FUNCTION.search(url.path)
    function = unquote(match.group(1)) if match else ""
    function = function.split(":function:")[-1].split(":")[0]  # a name, a partial or a full ARN
    region_match = _REGION.search(headers.get("Authorization", ""))
    region = region_match.group(1) if region_match else "us-east-1"
    with _LOCK:
        if request.method == "GET" and query.get("List"):
            configs = [
                config for (r, f, _), config in sorted(_CONFIGS.items()) if r == region and f == function
            ]
            return _ok(200, {"ProvisionedConcurrencyConfigs": configs})
        qualifier = query.get("Qualifier", "")
        if not qualifier or qualifier == "$LATEST":
            return _error(400, "InvalidParameterValueException", "a version or alias Qualifier is required")
        arn = _version_arn(region, function, qualifier)
        if arn is None:
            return _error(404, "ResourceNotFoundException", f"Function not found: {function}:{qualifier}")
        key = (region, function, qualifier)
        if request.method == "PUT":
            body = json.loads(request.get_data() or b"{}")
            count = body.get("ProvisionedConcurrentExecutions")
            if not isinstance(count, int) or count < 1:
                return _error(
                    400, "InvalidParameterValueException", "ProvisionedConcurrentExecutions must be >= 1"
                )
            now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "+0000")
            config = {
                "FunctionArn": arn,
                "RequestedProvisionedConcurrentExecutions": count,
                "AvailableProvisionedConcurrentExecutions": count,
                "AllocatedProvisionedConcurrentExecutions": count,
                "Status": "READY",
                "LastModified": now,
            }
            _CONFIGS[key] = config
            return _ok(202, {k: v for k, v in config.items() if k != "FunctionArn"})
        config = _CONFIGS.get(key)
        if config is None:
            return _error(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                f"No Provisioned Concurrency Config found for function: {function}:{qualifier}",
            )
        if request.method == "DELETE":
            del _CONFIGS[key]
            return _ok(204, None)
        return _ok(200, {k: v for k, v in config.items() if k != "FunctionArn"})


def snap_start_response(apply_on: str, version: str) -> dict[str, str]:
    """The ``SnapStart`` block Lambda reports for a function version with ``ApplyOn`` set as given."""
    on = apply_on == "PublishedVersions" and version != "$LATEST"
    return {"ApplyOn": apply_on, "OptimizationStatus": "On" if on else "Off"}


def _keep_snap_start() -> None:
    from moto.awslambda.models import LambdaFunction

    if getattr(LambdaFunction, "_snap_start_kept", False):
        return
    create, update, configuration = (
        LambdaFunction.__init__,
        LambdaFunction.update_configuration,
        LambdaFunction.get_configuration,
    )

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        create(self, account_id, spec, *args, **kwargs)
        self.snap_start_apply_on = (spec.get("SnapStart") or {}).get("ApplyOn", "None")

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "SnapStart" in config_updates:
            self.snap_start_apply_on = (config_updates["SnapStart"] or {}).get("ApplyOn", "None")
        return update(self, config_updates)

    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = configuration(self, on_create)
        config["SnapStart"] = snap_start_response(
            getattr(self, "snap_start_apply_on", "None"), str(config.get("Version", "$LATEST"))
        )
        return config

    LambdaFunction.__init__ = __init__
    LambdaFunction.update_configuration = update_configuration
    LambdaFunction.get_configuration = get_configuration
    LambdaFunction._snap_start_kept = True


def install() -> None:
    """Add the provisioned-concurrency routes and SnapStart to moto's Lambda service (before it starts)."""
    from moto.awslambda import urls

    urls.url_paths.setdefault(PATH, provisioned_concurrency)
    _keep_snap_start()


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
