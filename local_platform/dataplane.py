"""The local data plane: API Gateway in front of the Lambda service, reading everything from the emulator.

Per request: match the path against the emulated HTTP API's routes (``routes``), check the function's
resource policy, follow the route's integration to the ``live`` alias and pick a version by its
weights (``control_plane``), and run that version's deployed code in an execution environment
(``lambda_service``); the HTTP server in front is ``frontend``.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from email.utils import formatdate
from pathlib import Path
from typing import Any

from botocore.config import Config

from local_platform.aws_rules.control import AWS_SERVICE_HEADER
from local_platform.aws_rules.resource_policy import API_GATEWAY
from local_platform.control_plane import ControlPlane
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
from local_platform.lambda_service import IDLE_ENVIRONMENT_S, LambdaService
from local_platform.routes import Route, best_match
from local_platform.telemetry import Telemetry
from model_registry.core import aws, contract

LOG = logging.getLogger("dataplane")
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # HTTP API payload limit
MAX_INVOKE_BYTES = 6 * 1024 * 1024  # Lambda synchronous invocation payload limit
# A function without reserved concurrency may scale to the account's unreserved concurrency (hundreds of
# environments on AWS); here each environment is a process, so the data plane stops at this many.
UNRESERVED_CONCURRENCY = 10
PROVISION_INTERVAL_S = 1.0  # how often provisioned-concurrency configs are read and applied
TOO_LARGE = canned(413, "Request Entity Too Large")
UNAUTHORIZED = canned(401, "Unauthorized")


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
        config = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64)
        # Control-plane reads happen on the request path: fail fast and fall back to the last answer.
        control = Config(
            retries={"mode": "standard", "max_attempts": 2},
            connect_timeout=1,
            read_timeout=3,
            max_pool_connections=64,
        )

        def client(service: str, client_config: Config = config) -> Any:
            credentials = (DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"], DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
            return aws.client(service, region, emulator_url, config=client_config, credentials=credentials)

        self._lambda = client("lambda", control)
        self.control = ControlPlane(
            client("apigatewayv2", control),
            self._lambda,
            client("s3"),
            api_id=api_id,
            package_bucket=package_bucket,
            packages_dir=state_dir / "packages",
            default_concurrency=default_concurrency,
        )
        # Lambda publishes AWS/Lambda metrics as the AWS service it is; so does the data plane, locally.
        service_cloudwatch = client("cloudwatch")
        service_cloudwatch.meta.events.register(
            "before-sign.cloudwatch.PutMetricData",
            lambda request, **_: request.headers.__setitem__(AWS_SERVICE_HEADER, "lambda"),
        )
        self.telemetry = Telemetry(client("logs"), client("cloudwatch"), service_cloudwatch).start()
        base_env = {
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
            base_env[contract.ENV_AWS_CALL_LOG] = str(aws_call_log)
        self.lambda_service = LambdaService(
            self.control,
            self._lambda,
            self.telemetry,
            emulator_url=emulator_url,
            region=region,
            state_dir=state_dir,
            runtime_dir=runtime_dir,
            base_env=base_env,
        )

    def routes(self) -> list[Route]:
        """The HTTP API's routes, as last read from the emulator."""
        return self.control.routes()

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
        matched = best_match(self.routes(), method, raw_path)
        if matched is None:
            return NOT_FOUND
        route, params = matched
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
        if not self.control.invoke_allowed(route, method, raw_path):
            LOG.warning(
                "%s: API Gateway may not invoke %s%s (its resource policy gives %s no lambda:InvokeFunction)",
                route.route_key,
                route.function_name,
                f":{route.qualifier}" if route.qualifier else "",
                API_GATEWAY,
            )
            return INTERNAL_ERROR
        version = self.control.resolve_version(route.function_name, route.qualifier)
        outcome = self.lambda_service.invoke(route, version, event, request_id)
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

    # What the housekeeping thread, make up and the tests ask of the Lambda service.

    def provision(self) -> dict[str, dict[str, int]]:
        """See :meth:`LambdaService.provision`."""
        return self.lambda_service.provision()

    def prepare_snapshots(self) -> list[tuple[str, str]]:
        """See :meth:`LambdaService.prepare_snapshots`."""
        return self.lambda_service.prepare_snapshots()

    def reclaim_idle(self, idle_for_s: float = IDLE_ENVIRONMENT_S) -> int:
        """See :meth:`LambdaService.reclaim_idle`."""
        return self.lambda_service.reclaim_idle(idle_for_s)

    def snapshot_pids(self, function_name: str) -> dict[str, int]:
        """See :meth:`LambdaService.snapshot_pids`."""
        return self.lambda_service.snapshot_pids(function_name)

    def provisioned_pids(self, function_name: str) -> dict[str, list[int]]:
        """See :meth:`LambdaService.provisioned_pids`."""
        return self.lambda_service.provisioned_pids(function_name)

    def worker_pids(self) -> list[int]:
        """See :meth:`LambdaService.worker_pids`."""
        return self.lambda_service.worker_pids()

    def environment_counts(self) -> dict[str, tuple[int, int]]:
        """See :meth:`LambdaService.environment_counts`."""
        return self.lambda_service.environment_counts()

    def stop(self) -> None:
        """Stop every execution environment, then flush and stop the telemetry."""
        self.lambda_service.stop()
        self.telemetry.stop()
