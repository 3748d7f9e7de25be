"""The platform contract: names shared by Terraform, the Lambda handler and modelctl.

The facts live in ``contract.json`` beside this module so Terraform can read the very same file
with ``jsondecode(file(...))``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTRACT_PATH = Path(__file__).with_name("contract.json")
_CONTRACT: dict[str, Any] = json.loads(CONTRACT_PATH.read_text())

ENV: dict[str, str] = _CONTRACT["env"]
ENV_TABLE = ENV["table"]
ENV_BUCKET = ENV["bucket"]
ENV_MODEL_NAME = ENV["model_name"]
ENV_MODEL_VERSION = ENV["model_version"]
ENV_ALLOW_PICKLE = ENV["allow_pickle"]
ENV_MAX_BATCH_SIZE = ENV["max_batch_size"]
ENV_CACHE_SIZE = ENV["cache_size"]
ENV_ENDPOINT_URL = ENV["endpoint_url"]
ENV_REGION = ENV["region"]
ENV_POOL = ENV["pool"]  # "true" in the pooled function
ENV_POOL_CACHE_FRACTION = ENV["pool_cache_fraction"]
ENV_POOL_POLICY_TTL = ENV["pool_policy_ttl"]
# When set, every AWS call the library's clients make is appended to this file (JSON lines), e.g. to
# review the permissions a role needs; the e2e suite checks them against iam/*.json.
ENV_AWS_CALL_LOG = ENV["aws_call_log"]

PARTITION_KEY: str = _CONTRACT["table"]["partition_key"]
SORT_KEY: str = _CONTRACT["table"]["sort_key"]
SUMMARY_SORT_KEY: int = _CONTRACT["table"]["summary_sort_key"]
CATALOG_INDEX: str = _CONTRACT["table"]["catalog_index"]
CATALOG_KEY: str = _CONTRACT["table"]["catalog_key"]
CATALOG_VALUE: str = _CONTRACT["table"]["catalog_value"]
ARTIFACT_PREFIX: str = _CONTRACT["artifact_prefix"]
# Registry model names: also a path segment, a Lambda function and IAM role name part, a DynamoDB key.
MODEL_NAME_PATTERN: str = _CONTRACT["model_name_pattern"]
LAYER_FRAMEWORKS: tuple[str, ...] = tuple(_CONTRACT["frameworks"]["layers"])
REGISTRABLE_FRAMEWORKS: tuple[str, ...] = tuple(_CONTRACT["frameworks"]["registrable"])
# Registrable without a layer of their own: served through their ONNX form only.
ONNX_ONLY_FRAMEWORKS: tuple[str, ...] = tuple(_CONTRACT["frameworks"]["onnx_only"])
DEPLOYMENT_PREFIX: str = _CONTRACT["deployment_prefix"]
ALIAS_NAME: str = _CONTRACT["alias_name"]
ENV_PLATFORM_NAME = ENV["platform_name"]
DEFAULT_PLATFORM_NAME: str = _CONTRACT["default_platform_name"]
FUNCTION_NAME_TEMPLATE: str = _CONTRACT["function_name_template"]
TABLE_NAME_TEMPLATE: str = _CONTRACT["table_name_template"]
ROUTE_TEMPLATES: list[str] = _CONTRACT["routes"]
VERSION_HEADER: str = _CONTRACT["headers"]["model_version"]
V2_HEADER_LENGTH: str = _CONTRACT["headers"]["v2_header_length"]
# Function tag: the provisioned concurrency Terraform asks for; rollouts put it on the live versions.
TAG_PROVISIONED_CONCURRENCY: str = _CONTRACT["tags"]["provisioned_concurrency"]
# The handler's metrics (EMF): namespace and service, and the per-version server-error metric with the
# exact dimension set the handler publishes it with and the rollout gate reads it by.
METRICS_NAMESPACE: str = _CONTRACT["metrics"]["namespace"]
METRICS_SERVICE: str = _CONTRACT["metrics"]["service"]
SERVER_ERRORS_METRIC: str = _CONTRACT["metrics"]["server_errors"]
REQUESTS_METRIC: str = _CONTRACT["metrics"]["requests"]
LATENCY_METRIC: str = _CONTRACT["metrics"]["latency"]
VERSION_DIMENSIONS: list[str] = _CONTRACT["metrics"]["version_dimensions"]
# An event with this key makes the handler answer at once: rollouts invoke an Inactive SnapStart version
# with it to have Lambda re-create its snapshot (the invocation itself fails with SnapStartNotReady).
ACTIVATION_EVENT_KEY: str = _CONTRACT["activation_event_key"]


def version_dimensions(model_name: str, model_version: str, function_version: str) -> dict[str, str]:
    """The dimensions of a function version's server-error metric."""
    values = {
        "model": model_name,
        "model_version": model_version,
        "function_version": function_version,
        "service": METRICS_SERVICE,
    }
    return {name: values[name] for name in VERSION_DIMENSIONS}


@dataclass(frozen=True)
class LambdaRuntime:
    """A Lambda Python runtime: the OS it runs on, that OS's glibc, and whether it offers SnapStart."""

    name: str
    os: str
    glibc: str
    snap_start: bool

    @property
    def python_version(self) -> str:
        """``3.12`` for ``python3.12``."""
        return self.name.removeprefix("python")


LAMBDA_RUNTIMES: dict[str, LambdaRuntime] = {
    name: LambdaRuntime(name, facts["os"], facts["glibc"], bool(facts["snap_start"]))
    for name, facts in _CONTRACT["lambda_runtimes"].items()
}
DEFAULT_LAMBDA_RUNTIME: str = _CONTRACT["default_lambda_runtime"]


def lambda_runtime(name: str) -> LambdaRuntime:
    """The facts of a supported runtime; ValueError naming the supported ones otherwise."""
    try:
        return LAMBDA_RUNTIMES[name]
    except KeyError:
        raise ValueError(
            f"unsupported Lambda runtime {name!r}: use one of {', '.join(LAMBDA_RUNTIMES)}"
        ) from None


def function_name(platform: str, model_name: str) -> str:
    """Name of the Lambda function that serves ``model_name`` on platform ``platform``."""
    return FUNCTION_NAME_TEMPLATE.format(platform=platform, model=model_name)


def table_name(platform: str) -> str:
    """Name of the registry table of platform ``platform``."""
    return TABLE_NAME_TEMPLATE.format(platform=platform)


def artifact_key(model_name: str, sha256: str, extension: str) -> str:
    """Content-addressed S3 key of an artifact."""
    return f"{ARTIFACT_PREFIX}/{model_name}/{sha256}.{extension}"


def route_keys(model_name: str) -> list[str]:
    """API Gateway route keys of one model's endpoint."""
    return [template.replace("{name}", model_name) for template in ROUTE_TEMPLATES]


def deployment_key(sha256_hex: str) -> str:
    """S3 key of a deployment package (function zip or layer) by its content hash."""
    return f"{DEPLOYMENT_PREFIX}/{sha256_hex}.zip"


# The pooled tier (contract.json "pool").
POOL: dict[str, Any] = _CONTRACT["pool"]
POOL_FRAMEWORK: str = POOL["framework"]
# The pool's model routes are ROUTE_TEMPLATES as they are: {name} stays a path parameter.
POOL_SERVER_ROUTES: tuple[str, ...] = tuple(POOL["server_routes"])
POOL_METRICS_FUNCTION_VERSION: str = POOL["metrics_function_version"]


def pool_function_name(platform_name: str) -> str:
    """The pooled function of a platform."""
    return str(POOL["function_name_template"]).replace("{platform}", platform_name)
