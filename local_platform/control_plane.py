"""The local data plane's view of the AWS control plane: routes, aliases, resource policies, reserved
concurrency and version configurations, read from the emulator with short TTLs, and served from the
last answer while the emulator does not answer (as Lambda and API Gateway keep serving when their
control plane is down)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import random
import re
import shutil
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError

from local_platform.aws_rules.resource_policy import allows_invoke
from local_platform.routes import Route, route_from_api
from local_platform.runtime import VersionSpec
from model_registry.core import contract

LOG = logging.getLogger("dataplane")
# A stage serves a deployment, a snapshot of the API that takes effect after a change
# (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-stages.html): routes are read at
# most this often, so for a moment requests still reach a removed route's target, as on AWS.
ROUTES_TTL_S = 2.0
ALIAS_TTL_S = 0.2
CONCURRENCY_TTL_S = 5.0
POLICY_TTL_S = 5.0
# When the emulator (the AWS control plane) does not answer, serve what was last read and try again
# after this long: like Lambda and API Gateway, serving must not stop because the control plane is down.
STALE_RETRY_S = 5.0
_STALE = object()  # a control-plane read that was skipped or failed: serve the last answer
_ARN_SCOPE = re.compile(r"arn:([^:]+):lambda:([^:]+):(\d+):function:")  # partition, region, account


def _sha_hex(code_sha256_b64: str) -> str:
    return base64.b64decode(code_sha256_b64).hex()


class ControlPlane:
    """Cached reads of one HTTP API and the Lambda functions it integrates with."""

    def __init__(
        self,
        apigw: Any,
        lambda_: Any,
        s3: Any,
        *,
        api_id: str,
        package_bucket: str,
        packages_dir: Path,
        default_concurrency: int,
    ) -> None:
        self._apigw, self._lambda, self._s3 = apigw, lambda_, s3
        self.api_id = api_id
        self.package_bucket = package_bucket
        self.packages_dir = packages_dir
        self.default_concurrency = default_concurrency
        self._control_down_until = float("-inf")
        self._routes: tuple[float, list[Route]] = (0.0, [])
        self._aliases: dict[tuple[str, str], tuple[float, str, dict[str, float]]] = {}
        self._specs: dict[tuple[str, str], VersionSpec] = {}
        self._limits: dict[str, tuple[float, int]] = {}
        self._policies: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}
        self._package_lock = threading.Lock()

    def routes(self) -> list[Route]:
        fetched_at, routes = self._routes
        if time.monotonic() - fetched_at < ROUTES_TTL_S:
            return routes
        fresh = self._read_or_stale("routes", self._read_routes, stale_available=bool(fetched_at))
        if fresh is _STALE:
            return routes
        self._routes = (time.monotonic(), fresh)
        return fresh

    def _read_or_stale(self, what: str, read: Callable[[], Any], *, stale_available: bool) -> Any:
        """``read()``, or _STALE while the emulator is unreachable and an earlier answer can be served.

        One failed read marks the whole control plane down for STALE_RETRY_S: while it is down no read is
        tried, so requests do not each wait for a timeout.
        """
        if stale_available and time.monotonic() < self._control_down_until:
            return _STALE
        try:
            return read()
        except BotoCoreError as exc:
            if not stale_available:
                raise
            self._control_down_until = time.monotonic() + STALE_RETRY_S
            LOG.warning("emulator unreachable (%s): serving the last known %s", exc, what)
            return _STALE

    def _read_routes(self) -> list[Route]:
        integrations = {
            i["IntegrationId"]: i
            for i in self._apigw.get_integrations(ApiId=self.api_id, MaxResults="500")["Items"]
        }
        items = self._apigw.get_routes(ApiId=self.api_id, MaxResults="500")["Items"]
        return [route for item in items if (route := route_from_api(item, integrations)) is not None]

    def resolve_version(self, function_name: str, qualifier: str | None) -> str:
        """The version to run: the alias's version, or one of its weighted versions."""
        if qualifier is None or qualifier == "$LATEST" or qualifier.isdigit():
            return qualifier or "$LATEST"
        version, weights = self.alias(function_name, qualifier)
        draw = random.random()
        for candidate, weight in weights.items():
            if draw < weight:
                return candidate
            draw -= weight
        return version

    def alias(self, function_name: str, qualifier: str) -> tuple[str, dict[str, float]]:
        """An alias's version and additional version weights, read at most every ALIAS_TTL_S."""
        key = (function_name, qualifier)
        cached = self._aliases.get(key)
        if cached is None or time.monotonic() - cached[0] > ALIAS_TTL_S:
            alias = self._read_or_stale(
                f"alias {function_name}:{qualifier}",
                lambda: self._lambda.get_alias(FunctionName=function_name, Name=qualifier),
                stale_available=cached is not None,
            )
            if alias is not _STALE:
                weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
                cached = (
                    time.monotonic(),
                    alias["FunctionVersion"],
                    {k: float(v) for k, v in weights.items()},
                )
                self._aliases[key] = cached
        assert cached is not None
        return cached[1], cached[2]

    def invoke_allowed(self, route: Route, method: str, raw_path: str) -> bool:
        """Whether the function's resource-based policy lets API Gateway invoke the route's target, as
        API Gateway requires (see :mod:`~local_platform.aws_rules.resource_policy`); the policy is
        re-read every POLICY_TTL_S."""
        key = (route.function_name, route.qualifier)
        cached = self._policies.get(key)
        if cached is None or time.monotonic() - cached[0] > POLICY_TTL_S:

            def read() -> dict[str, Any]:
                qualified = {"Qualifier": route.qualifier} if route.qualifier else {}
                try:
                    policy = self._lambda.get_policy(FunctionName=route.function_name, **qualified)["Policy"]
                except self._lambda.exceptions.ResourceNotFoundException:
                    return {}  # no policy at all
                return json.loads(policy)

            answer = self._read_or_stale(
                f"policy of {route.function_name}", read, stale_available=cached is not None
            )
            if answer is not _STALE:
                cached = (time.monotonic(), answer)
                self._policies[key] = cached
        assert cached is not None
        scope = _ARN_SCOPE.search(route.integration_arn)
        if scope is None:
            return False
        partition, region, account = scope.groups()
        # The path part of the source ARN is the request's; the platform's permissions allow every path.
        source_arn = (
            f"arn:{partition}:execute-api:{region}:{account}:{self.api_id}/$default/{method}{raw_path}"
        )
        return allows_invoke(cached[1], route.function_name, route.qualifier, source_arn, account)

    def concurrency_limit(self, function_name: str) -> int:
        cached = self._limits.get(function_name)
        if cached and time.monotonic() - cached[0] < CONCURRENCY_TTL_S:
            return cached[1]
        answer = self._read_or_stale(
            f"concurrency of {function_name}",
            lambda: self._lambda.get_function_concurrency(FunctionName=function_name),
            stale_available=cached is not None,
        )
        if answer is _STALE:
            assert cached is not None
            return cached[1]
        reserved = answer.get("ReservedConcurrentExecutions")
        limit = int(reserved) if reserved is not None else self.default_concurrency
        self._limits[function_name] = (time.monotonic(), limit)
        return limit

    def spec(self, function_name: str, version: str) -> VersionSpec:
        key = (function_name, version)
        if version != "$LATEST" and key in self._specs:
            return self._specs[key]
        config = self._lambda.get_function(FunctionName=function_name, Qualifier=version)["Configuration"]
        code_dir = self._package(config["CodeSha256"])
        layer_dirs = []
        for layer in config.get("Layers", []):
            layer_name, _, number = layer["Arn"].split(":layer:")[1].rpartition(":")
            content = self._lambda.get_layer_version(LayerName=layer_name, VersionNumber=int(number))[
                "Content"
            ]
            layer_dirs.append(self._package(content["CodeSha256"]))
        spec = VersionSpec(
            function_name=function_name,
            version=config.get("Version", version),
            handler=config["Handler"],
            timeout_s=float(config.get("Timeout", 3)),
            memory_mb=int(config.get("MemorySize", 128)),
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
            code_dir=code_dir,
            layer_dirs=tuple(layer_dirs),
            function_arn=config["FunctionArn"],
            runtime=config.get("Runtime") or contract.DEFAULT_LAMBDA_RUNTIME,
            snap_start=(config.get("SnapStart") or {}).get("OptimizationStatus") == "On",
        )
        self._specs[key] = spec
        return spec

    def _package(self, code_sha256: str) -> Path:
        """The unpacked deployment package with this CodeSha256, fetched once from the emulator's S3."""
        sha_hex = _sha_hex(code_sha256)
        target = self.packages_dir / sha_hex
        with self._package_lock:
            if target.exists():
                return target
            data = self._s3.get_object(Bucket=self.package_bucket, Key=contract.deployment_key(sha_hex))[
                "Body"
            ].read()
            if hashlib.sha256(data).hexdigest() != sha_hex:
                raise RuntimeError(f"deployment package {sha_hex[:12]} does not match its CodeSha256")
            staging = target.with_name(f".{sha_hex}.tmp")
            shutil.rmtree(staging, ignore_errors=True)
            zipfile.ZipFile(io.BytesIO(data)).extractall(staging)
            staging.rename(target)
        return target
