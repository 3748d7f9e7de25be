"""The local data plane: API Gateway and the Lambda service, reading everything from the emulator.

Per request: match the path against the emulated HTTP API's routes, follow the route's integration to
the ``live`` alias, pick a version by the alias's routing weights, and run that version's deployed
code (fetched from the emulator by the CodeSha256 Lambda reports) in an execution environment with
that version's environment, handler, memory and timeout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import random
import re
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local_platform.aws_rules.control import AWS_SERVICE_HEADER, set_version_state
from local_platform.aws_rules.resource_policy import API_GATEWAY, allows_invoke
from local_platform.emulator import DUMMY_CREDENTIALS
from local_platform.events import (
    GATEWAY_TIMEOUT,
    INTERNAL_ERROR,
    NOT_FOUND,
    TOO_MANY_REQUESTS,
    HttpResult,
    build_event,
    canned,
    map_result,
)
from local_platform.runtime import (
    ON_DEMAND,
    ExecutionEnvironment,
    FunctionPool,
    Outcome,
    RestoredEnvironment,
    RuntimeUnavailable,
    Snapshot,
    SnapshotFailed,
    VersionSpec,
)
from local_platform.telemetry import Telemetry
from model_registry.core import contract
from tooling.glibc import GlibcTooNew
from tooling.packaging import check_glibc, install_runtime

LOG = logging.getLogger("dataplane")
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # HTTP API payload limit
MAX_INVOKE_BYTES = 6 * 1024 * 1024  # Lambda synchronous invocation payload limit
ROUTES_TTL_S = 2.0
ALIAS_TTL_S = 0.2
CONCURRENCY_TTL_S = 5.0
# When the emulator (the AWS control plane) does not answer, serve what was last read and try again
# after this long: like Lambda and API Gateway, serving must not stop because the control plane is down.
STALE_RETRY_S = 5.0
_STALE = object()  # a control-plane read that was skipped or failed: serve the last answer
# A function without reserved concurrency may scale to the account's unreserved concurrency (hundreds of
# environments on AWS); here each environment is a process, so the data plane stops at this many.
UNRESERVED_CONCURRENCY = 10
IDLE_ENVIRONMENT_S = 600.0  # Lambda reclaims environments idle for minutes; so does the data plane
PROVISION_INTERVAL_S = 1.0  # how often provisioned-concurrency configs are read and applied
TOO_LARGE = canned(413, "Request Entity Too Large")
UNAUTHORIZED = canned(401, "Unauthorized")
_FUNCTION_ARN = re.compile(r"arn:[^:]+:lambda:[^:]+:\d+:function:([^:/]+)(?::([^:/]+))?")
_ARN_SCOPE = re.compile(r"arn:([^:]+):lambda:([^:]+):(\d+):function:")  # partition, region, account
POLICY_TTL_S = 5.0


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


def _sha_hex(code_sha256_b64: str) -> str:
    return base64.b64decode(code_sha256_b64).hex()


class DataPlane:
    """API Gateway + Lambda, locally, for one HTTP API in the emulator."""

    def __init__(
        self,
        emulator_url: str,
        api_id: str,
        package_bucket: str,
        state_dir: Path,
        runtime_dir: Path,
        *,
        region: str = "us-east-1",
        default_concurrency: int = UNRESERVED_CONCURRENCY,
        api_key: str | None = None,
        aws_call_log: Path | None = None,
    ) -> None:
        self.emulator_url = emulator_url
        self.api_id = api_id
        self.package_bucket = package_bucket
        self.state_dir = state_dir
        self.runtime_dir = runtime_dir  # holds runtime-<runtime>/: what each Lambda runtime provides
        self.region = region
        self.default_concurrency = default_concurrency
        self.api_key = api_key
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=region,
        )
        config = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64)
        # Control-plane reads happen on the request path: fail fast and fall back to the last answer.
        control = Config(
            retries={"mode": "standard", "max_attempts": 2},
            connect_timeout=1,
            read_timeout=3,
            max_pool_connections=64,
        )

        def client(service: str, client_config: Config = config) -> Any:
            return session.client(service, endpoint_url=emulator_url, config=client_config)

        self._apigw, self._lambda = client("apigatewayv2", control), client("lambda", control)
        self._s3 = client("s3")
        self._control_down_until = float("-inf")
        # Lambda publishes AWS/Lambda metrics as the AWS service it is; so does the data plane, locally.
        service_cloudwatch = client("cloudwatch")
        service_cloudwatch.meta.events.register(
            "before-sign.cloudwatch.PutMetricData",
            lambda request, **_: request.headers.__setitem__(AWS_SERVICE_HEADER, "lambda"),
        )
        self.telemetry = Telemetry(client("logs"), client("cloudwatch"), service_cloudwatch).start()
        self._routes: tuple[float, list[Route]] = (0.0, [])
        self._aliases: dict[tuple[str, str], tuple[float, str, dict[str, float]]] = {}
        self._specs: dict[tuple[str, str], VersionSpec] = {}
        self._limits: dict[str, tuple[float, int]] = {}
        self._policies: dict[tuple[str, str | None], tuple[float, dict[str, Any]]] = {}
        self._pools: dict[str, FunctionPool] = {}
        self._runtimes: dict[str, list[Path]] = {}
        self._os_refusals: dict[tuple[Path, str], dict[str, Any] | None] = {}
        self._version_states: dict[tuple[str, str], str] = {}  # SnapStart versions, read by housekeeping
        self._lock = threading.Lock()
        self._package_lock = threading.Lock()
        self._base_env = {
            **DUMMY_CREDENTIALS,
            contract.ENV_ENDPOINT_URL: emulator_url,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
        }
        if aws_call_log is not None:  # every AWS call the functions make, for a permissions review
            self._base_env[contract.ENV_AWS_CALL_LOG] = str(aws_call_log)

    # ------------------------------------------------------------------ control plane reads

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
        routes = []
        for item in self._apigw.get_routes(ApiId=self.api_id, MaxResults="500")["Items"]:
            target = item.get("Target", "")
            integration = integrations.get(target.removeprefix("integrations/"))
            if integration is None:
                continue
            match = _FUNCTION_ARN.search(integration.get("IntegrationUri", ""))
            if match is None:
                continue
            route_key = item["RouteKey"]
            method, _, path = route_key.partition(" ")
            segments = tuple(s for s in path.split("/") if s) if route_key != "$default" else ("{proxy+}",)
            routes.append(
                Route(
                    method if route_key != "$default" else "ANY",
                    segments,
                    route_key,
                    match.group(1),
                    match.group(2),
                    integration["IntegrationUri"],
                    integration.get("TimeoutInMillis", 30000) / 1000,
                )
            )
        return routes

    def resolve_version(self, function_name: str, qualifier: str | None) -> str:
        """The version to run: the alias's version, or one of its weighted versions."""
        if qualifier is None or qualifier == "$LATEST" or qualifier.isdigit():
            return qualifier or "$LATEST"
        version, weights = self._alias(function_name, qualifier)
        draw = random.random()
        for candidate, weight in weights.items():
            if draw < weight:
                return candidate
            draw -= weight
        return version

    def _alias(self, function_name: str, qualifier: str) -> tuple[str, dict[str, float]]:
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
        target = self.state_dir / "packages" / sha_hex
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

    def _pool(self, function_name: str) -> FunctionPool:
        with self._lock:
            return self._pools.setdefault(function_name, FunctionPool(function_name))

    # ------------------------------------------------------------------ requests

    def handle(
        self,
        method: str,
        raw_path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> HttpResult:
        """Answer one HTTP request as API Gateway + Lambda would."""
        if len(body) > MAX_REQUEST_BYTES:
            return TOO_LARGE
        if self.api_key is not None and not self._authorized(headers):
            return UNAUTHORIZED
        parts = [p for p in raw_path.split("/") if p]
        best: tuple[tuple[int, ...], Route, dict[str, str]] | None = None
        for route in self.routes():
            matched = route.match(method, parts)
            if matched and (best is None or matched[0] > best[0]):
                best = (matched[0], route, matched[1])
        if best is None:
            return NOT_FOUND
        _, route, params = best
        request_id = str(uuid.uuid4())
        event = build_event(
            method=method,
            path=raw_path,
            route_key=route.route_key,
            path_parameters=params or None,
            headers={**headers, "x-forwarded-for": source_ip, "x-forwarded-proto": "http"},
            query=query,
            body=body,
            api_id=self.api_id,
            source_ip=source_ip,
        )
        if len(json.dumps(event)) > MAX_INVOKE_BYTES:
            return TOO_LARGE
        if not self.invoke_allowed(route, method, raw_path):
            LOG.warning(
                "%s: API Gateway may not invoke %s%s (its resource policy gives %s no lambda:InvokeFunction)",
                route.route_key,
                route.function_name,
                f":{route.qualifier}" if route.qualifier else "",
                API_GATEWAY,
            )
            return INTERNAL_ERROR
        version = self.resolve_version(route.function_name, route.qualifier)
        outcome = self.invoke(route, version, event, request_id)
        if outcome.kind not in ("result", "throttled"):
            LOG.warning(
                "%s:%s %s: %s: %s",
                route.function_name,
                version,
                outcome.kind,
                outcome.error.get("errorType", ""),
                str(outcome.error.get("errorMessage", ""))[:500],
            )
        if outcome.kind == "result":
            try:
                result = map_result(outcome.result)
            except (ValueError, TypeError, KeyError):
                result = INTERNAL_ERROR
        elif outcome.kind == "throttled":
            result = TOO_MANY_REQUESTS
        elif outcome.kind == "timeout" and route.timeout_s < outcome.duration_ms / 1000 + 0.001:
            result = GATEWAY_TIMEOUT
        else:
            result = INTERNAL_ERROR
        return result.with_headers({"apigw-requestid": request_id, "date": formatdate(usegmt=True)})

    def _authorized(self, headers: dict[str, str]) -> bool:
        lowered = {k.lower(): v for k, v in headers.items()}
        presented = (
            lowered.get("x-api-key") or lowered.get("authorization", "").removeprefix("Bearer ").strip()
        )
        return bool(presented) and hmac.compare_digest(presented, self.api_key or "")

    def invoke(self, route: Route, version: str, event: dict[str, Any], request_id: str) -> Outcome:
        """Run one invocation in an execution environment of ``version``; record its metrics."""
        function_name = route.function_name
        spec = self.spec(function_name, version)
        os_refusal = self.os_refusal(spec)
        if os_refusal is not None:
            self._report_import_failure(spec, os_refusal)
        refusal = os_refusal or (self._not_ready(spec) if spec.snap_start else None)
        if refusal is not None:
            not_started = Outcome("init_error", error=refusal, version=version)
            self._record(route, version, not_started)
            return not_started
        pool = self._pool(function_name)
        try:
            environment, cold = pool.acquire(
                spec, self.concurrency_limit(function_name), self._new_environment
            )
        except (RuntimeUnavailable, SnapshotFailed) as exc:
            refused = Outcome("init_error", error=exc.error, version=version)
            self._record(route, version, refused)
            return refused
        if environment is None:
            self._record(route, version, Outcome("throttled"))
            return Outcome("throttled", version=version)
        timeout = min(spec.timeout_s, route.timeout_s)
        if cold:
            failed = environment.wait_ready()
            if failed is not None and failed.kind == "init_timeout" and environment.init_type == ON_DEMAND:
                # Lambda retries an init that overran its 10 s at the first invocation, within the
                # function's timeout: init and invocation then share that budget.
                self._report_init_failure(environment, failed)
                environment = pool.replace(environment, self._new_environment(spec))
                failed = environment.wait_ready(timeout)
                timeout -= ((failed.init_ms if failed else environment.init_ms) or 0.0) / 1000
            if failed is not None:
                self._report_init_failure(environment, failed)
                pool.discard(environment)
                failed.version = version
                self._record(route, version, failed)
                return failed
            self._report_cold_start(environment)
        context = {
            "function_name": function_name,
            "function_version": spec.version,
            "invoked_function_arn": route.integration_arn,
            "memory_limit_in_mb": spec.memory_mb,
            "aws_request_id": request_id,
            "log_group_name": environment.log_group,
            "log_stream_name": environment.log_stream,
        }
        outcome = environment.invoke(event, context, max(timeout, 0.001))
        outcome.version = spec.version
        outcome.init_ms = environment.init_ms if cold else None
        pool.release(environment)
        self._record(route, spec.version, outcome)
        return outcome

    def runtime_paths(self, runtime: str) -> list[Path]:
        """What the Lambda ``runtime`` itself puts on the path (boto3, awslambdaric), installed once."""
        with self._lock:
            if runtime not in self._runtimes:
                self._runtimes[runtime] = [
                    install_runtime(self.runtime_dir, runtime, log=LOG.info) / "python"
                ]
            return self._runtimes[runtime]

    def os_refusal(self, spec: VersionSpec) -> dict[str, Any] | None:
        """The import error Lambda would give for code or layers whose shared objects need a newer glibc
        than the runtime's OS provides (this machine's would load them): None when they all load."""
        packages = [(spec.code_dir, "the function code")]
        packages += [(layer, f"layer {layer.name[:12]}") for layer in spec.layer_dirs]
        for directory, what in packages:
            key = (directory, spec.runtime)
            if key not in self._os_refusals:
                try:
                    check_glibc(directory, spec.runtime, what)
                    self._os_refusals[key] = None
                except (GlibcTooNew, ValueError) as exc:
                    self._os_refusals[key] = {
                        "errorType": "Runtime.ImportModuleError",
                        "errorMessage": f"Unable to import module '{spec.handler.rpartition('.')[0]}': {exc}",
                    }
            if self._os_refusals[key] is not None:
                return self._os_refusals[key]
        return None

    def _new_environment(self, spec: VersionSpec, *, provisioned: bool = False) -> ExecutionEnvironment:
        if spec.snap_start:  # SnapStart: restore from the version's snapshot instead of running init
            return self._pool(spec.function_name).snapshot(spec, self._take_snapshot).restore()
        return ExecutionEnvironment(
            spec,
            self._base_env,
            self.runtime_paths(spec.runtime),
            self.telemetry.log,
            provisioned=provisioned,
        )

    def _take_snapshot(self, spec: VersionSpec) -> Snapshot:
        refusal = self.os_refusal(spec)
        if refusal is not None:
            raise SnapshotFailed(refusal)
        snapshot = Snapshot(spec, self._base_env, self.runtime_paths(spec.runtime), self.telemetry.log)
        failed = snapshot.wait_ready()
        if failed is not None:
            self._report_init_failure(snapshot, failed)
            raise SnapshotFailed(failed.error)
        self._report_cold_start(snapshot)
        return snapshot

    def _report_cold_start(self, environment: ExecutionEnvironment) -> None:
        """Lambda's INIT_REPORT / RESTORE_REPORT line, in the environment's log stream."""
        kind = "Restore" if isinstance(environment, RestoredEnvironment) else "Init"
        line = f"{kind.upper()}_REPORT {kind} Duration: {environment.init_ms or 0.0:.2f} ms"
        self.telemetry.log(environment.log_group, environment.log_stream, line)

    def _report_import_failure(self, spec: VersionSpec, error: dict[str, Any]) -> None:
        """What Lambda logs when the handler's module cannot be imported: the error, then the init report,
        in a new environment's stream (each failed attempt starts a new environment)."""
        group = f"/aws/lambda/{spec.function_name}"
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{spec.version}]{uuid.uuid4().hex[:12]}"
        self.telemetry.log(group, stream, f"[ERROR] {error['errorType']}: {error['errorMessage']}")
        report = "INIT_REPORT Init Duration: 0.00 ms\tPhase: init\tStatus: error"
        self.telemetry.log(group, stream, f"{report}\tError Type: {error['errorType']}")

    def _report_init_failure(self, environment: ExecutionEnvironment, failed: Outcome) -> None:
        status = "timeout" if failed.kind == "init_timeout" else "error"
        error = f"\tError Type: {failed.error.get('errorType', '')}" if status == "error" else ""
        line = (
            f"INIT_REPORT Init Duration: {failed.init_ms or 0.0:.2f} ms\tPhase: init\tStatus: {status}{error}"
        )
        self.telemetry.log(environment.log_group, environment.log_stream, line)

    def snapshot_pids(self, function_name: str) -> dict[str, int]:
        """Process ids of a function's SnapStart snapshots, per version."""
        return self._pool(function_name).snapshot_pids()

    def _record(self, route: Route, version: str, outcome: Outcome) -> None:
        """AWS/Lambda metrics for one invocation, with exactly the dimension sets Lambda publishes: all
        functions (none), ``FunctionName``, ``FunctionName`` + ``Resource`` (the qualifier invoked), and for
        an alias also ``ExecutedVersion`` (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html;
        "ExecutedVersion ... only applies to alias invocations")."""
        name = route.function_name
        dimension_sets: list[dict[str, str]] = [{}, {"FunctionName": name}]
        if route.qualifier and route.qualifier != "$LATEST":
            resource = {"FunctionName": name, "Resource": f"{name}:{route.qualifier}"}
            dimension_sets.append(resource)
            if not route.qualifier.isdigit() and version:
                dimension_sets.append({**resource, "ExecutedVersion": version})
        for dimensions in dimension_sets:
            if outcome.kind == "throttled":
                self.telemetry.metric("AWS/Lambda", "Throttles", 1, "Count", dimensions)
                continue
            self.telemetry.metric("AWS/Lambda", "Invocations", 1, "Count", dimensions)
            self.telemetry.metric(
                "AWS/Lambda", "Errors", float(outcome.kind != "result"), "Count", dimensions
            )
            self.telemetry.metric("AWS/Lambda", "Duration", outcome.duration_ms, "Milliseconds", dimensions)

    def environment_counts(self) -> dict[str, tuple[int, int]]:
        """(busy, idle) environments per function."""
        with self._lock:
            return {name: pool.sizes for name, pool in self._pools.items()}

    def provision(self) -> dict[str, dict[str, int]]:
        """Keep as many initialised environments per version as its provisioned concurrency asks for,
        started ahead of traffic as Lambda does. Returns function -> version -> environments started."""
        started: dict[str, dict[str, int]] = {}
        for function_name in sorted({route.function_name for route in self.routes()}):
            try:
                configs = self._lambda.list_provisioned_concurrency_configs(FunctionName=function_name)
            except (BotoCoreError, ClientError):
                continue  # the emulator is away: keep what is provisioned
            wanted = {
                c["FunctionArn"].rsplit(":", 1)[1]: int(c["RequestedProvisionedConcurrentExecutions"])
                for c in configs.get("ProvisionedConcurrencyConfigs", [])
            }
            pool = self._pool(function_name)
            for version, missing in pool.update_provisioned(wanted).items():
                if not version.isdigit():
                    continue  # on an alias: rollouts put it on versions
                spec = self.spec(function_name, version)
                limit = self.concurrency_limit(function_name)
                for _ in range(missing):
                    environment = self._new_environment(spec, provisioned=True)
                    if environment.wait_ready() is not None or not pool.add_provisioned(environment, limit):
                        break
                    started.setdefault(function_name, {}).setdefault(version, 0)
                    started[function_name][version] += 1
        return started

    def prepare_snapshots(self) -> list[tuple[str, str]]:
        """Do what Lambda does for SnapStart versions: take the snapshot of every ``Pending`` version (a
        published one, or an ``Inactive`` one being re-activated) and report it ``Active`` or ``Failed``;
        drop the snapshot of an ``Inactive`` version; keep one for every ``Active`` version an alias
        routes to. Returns the (function, version) pairs snapshotted now."""
        taken = []
        for function_name in sorted({r.function_name for r in self.routes()}):
            try:
                states = self._snap_start_states(function_name)
                routed = self._routed_versions(function_name)
            except (BotoCoreError, ClientError) as exc:
                LOG.warning("SnapStart versions of %s not read: %s", function_name, exc)
                continue
            pool = self._pool(function_name)
            for version, state in sorted(states.items()):
                if state == "Inactive":
                    pool.drop_snapshot(version)
                    continue
                wanted = state == "Pending" or (state == "Active" and version in routed)
                if not wanted or version in pool.snapshot_pids():
                    continue
                try:
                    pool.snapshot(self.spec(function_name, version), self._take_snapshot)
                except SnapshotFailed as exc:
                    LOG.warning("snapshot of %s:%s failed: %s", function_name, version, exc)
                    if state == "Pending":
                        reason = f"The snapshot could not be taken: {exc}"[:1000]
                        self._set_state(
                            function_name, version, "Failed", reason, "FunctionError.RuntimeInitError"
                        )
                    continue
                except (BotoCoreError, ClientError) as exc:
                    LOG.warning("snapshot of %s:%s not taken: %s", function_name, version, exc)
                    continue
                if state == "Pending":
                    self._set_state(function_name, version, "Active")
                taken.append((function_name, version))
        return taken

    def _snap_start_states(self, function_name: str) -> dict[str, str]:
        """State of each published SnapStart version of a function (remembered for the request path)."""
        states = {}
        for page in self._lambda.get_paginator("list_versions_by_function").paginate(
            FunctionName=function_name
        ):
            for config in page["Versions"]:
                if (
                    config["Version"] != "$LATEST"
                    and (config.get("SnapStart") or {}).get("OptimizationStatus") == "On"
                ):
                    states[config["Version"]] = config.get("State", "Active")
        for version, state in states.items():
            self._version_states[(function_name, version)] = state
        return states

    def _routed_versions(self, function_name: str) -> set[str]:
        versions: set[str] = set()
        for route in self.routes():
            if route.function_name == function_name and route.qualifier and not route.qualifier.isdigit():
                version, weights = self._alias(function_name, route.qualifier)
                versions |= {version, *weights}
        return versions

    def _set_state(
        self, function_name: str, version: str, state: str, reason: str = "", code: str = ""
    ) -> None:
        set_version_state(self.emulator_url, function_name, version, state, reason, code, region=self.region)
        self._version_states[(function_name, version)] = state

    def _not_ready(self, spec: VersionSpec) -> dict[str, Any] | None:
        """Lambda does not run a version that is not Active: an Inactive SnapStart version fails with
        SnapStartNotReadyException and is re-activated (Pending until its snapshot is taken again)
        (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-troubleshooting.html)."""
        state = self._version_states.get(spec.key, "Active")
        if state == "Active":
            return None
        if state == "Inactive":
            self._set_state(
                spec.function_name, spec.version, "Pending", "Lambda is restoring the snapshot", "Restoring"
            )
            return {
                "errorType": "SnapStartNotReadyException",
                "errorMessage": "Lambda is initializing your function. It will be ready to invoke once your "
                "function state becomes ACTIVE.",
            }
        return {
            "errorType": "ResourceConflictException",
            "errorMessage": f"The function is currently in the following state: {state}",
        }

    def provisioned_pids(self, function_name: str) -> dict[str, list[int]]:
        """Process ids of a function's provisioned environments, per version."""
        return self._pool(function_name).provisioned_pids()

    def reclaim_idle(self, idle_for_s: float = IDLE_ENVIRONMENT_S) -> int:
        """Stop environments idle for ``idle_for_s`` or more (next request cold-starts); returns how many."""
        with self._lock:
            pools = list(self._pools.values())
        return sum(pool.reclaim_idle(idle_for_s) for pool in pools)

    def worker_pids(self) -> list[int]:
        """Process ids of every execution environment (busy or idle)."""
        with self._lock:
            return [pid for pool in self._pools.values() for pid in pool.pids()]

    def stop(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.stop_all()
        self.telemetry.stop()
