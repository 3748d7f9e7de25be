"""What the rollout gate sees of a version: requests, errors and p99 duration from CloudWatch."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from model_registry.core import contract
from model_registry.rollout.plan import Health

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef
else:
    CloudWatchClient = DimensionTypeDef = Any


def _dimensions(values: Mapping[str, str]) -> list[DimensionTypeDef]:
    return [{"Name": k, "Value": v} for k, v in values.items()]


class HealthReader:
    """Reads the per-version metrics Lambda and the handler publish."""

    def __init__(self, client: CloudWatchClient) -> None:
        self.client = client

    def _datapoints(
        self,
        namespace: str,
        metric: str,
        dimensions: list[DimensionTypeDef],
        since: datetime,
        **statistic: Any,
    ) -> list:
        return self.client.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=dimensions,
            StartTime=since,
            EndTime=datetime.now(UTC) + timedelta(seconds=60),
            Period=60,
            **statistic,
        )["Datapoints"]

    def _sum(self, namespace: str, metric: str, dimensions: list[DimensionTypeDef], since: datetime) -> int:
        points = self._datapoints(namespace, metric, dimensions, since, Statistics=["Sum"])
        return int(sum(p["Sum"] for p in points))

    def _p99(
        self, namespace: str, metric: str, dimensions: list[DimensionTypeDef], since: datetime
    ) -> float | None:
        points = self._datapoints(namespace, metric, dimensions, since, ExtendedStatistics=["p99"])
        values = [
            p["ExtendedStatistics"]["p99"] for p in points if "p99" in (p.get("ExtendedStatistics") or {})
        ]
        return max(values) if values else None

    def read(
        self, function_name: str, model_name: str, model_version: str, lambda_version: str, since: datetime
    ) -> Health:
        """Requests, errors (function errors + handler 5xx) and p99 duration of one Lambda version.

        Lambda publishes per-version metrics of alias invocations only with the dimensions FunctionName,
        Resource (``<function>:<alias>``) and ExecutedVersion, and CloudWatch answers only for the exact
        dimension set that was published
        (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html,
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html).
        The handler's 5xx count carries the contract's dimensions (``contract.version_dimensions``).
        """
        lambda_dims = _dimensions(
            {
                "FunctionName": function_name,
                "Resource": f"{function_name}:{contract.ALIAS_NAME}",
                "ExecutedVersion": lambda_version,
            }
        )
        handler_dims = _dimensions(
            contract.version_dimensions(model_name, model_version or "latest", lambda_version)
        )
        requests = self._sum("AWS/Lambda", "Invocations", lambda_dims, since)
        errors = self._sum("AWS/Lambda", "Errors", lambda_dims, since) + self._sum(
            contract.METRICS_NAMESPACE, contract.SERVER_ERRORS_METRIC, handler_dims, since
        )
        return Health(requests, errors, self._p99("AWS/Lambda", "Duration", lambda_dims, since))

    def read_pooled(self, model_name: str, model_version: str, since: datetime) -> Health:
        """Requests, server errors and p99 latency of one model version served by the pooled function:
        the per-version metrics the pool publishes while the model has a canary (AWS/Lambda's metrics
        are per function, and the pool's function serves every pooled model)."""
        dims = _dimensions(
            contract.version_dimensions(model_name, model_version, contract.POOL_METRICS_FUNCTION_VERSION)
        )
        namespace = contract.METRICS_NAMESPACE
        return Health(
            self._sum(namespace, contract.REQUESTS_METRIC, dims, since),
            self._sum(namespace, contract.SERVER_ERRORS_METRIC, dims, since),
            self._p99(namespace, contract.LATENCY_METRIC, dims, since),
        )
