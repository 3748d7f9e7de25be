"""What the rollout gate sees of a Lambda version: requests, errors and p99 duration from CloudWatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from model_registry.core import contract
from model_registry.rollout.plan import Health

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef
else:
    CloudWatchClient = DimensionTypeDef = Any


class HealthReader:
    """Reads the per-version metrics Lambda and the handler publish."""

    def __init__(self, client: CloudWatchClient) -> None:
        self.client = client

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
        end = datetime.now(UTC) + timedelta(seconds=60)
        lambda_dims: list[DimensionTypeDef] = [
            {"Name": "FunctionName", "Value": function_name},
            {"Name": "Resource", "Value": f"{function_name}:{contract.ALIAS_NAME}"},
            {"Name": "ExecutedVersion", "Value": lambda_version},
        ]
        handler_dims: list[DimensionTypeDef] = [
            {"Name": k, "Value": v}
            for k, v in contract.version_dimensions(
                model_name, model_version or "latest", lambda_version
            ).items()
        ]

        def datapoints(
            namespace: str, metric: str, dimensions: list[DimensionTypeDef], **statistic: Any
        ) -> list:
            return self.client.get_metric_statistics(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=dimensions,
                StartTime=since,
                EndTime=end,
                Period=60,
                **statistic,
            )["Datapoints"]

        def total(namespace: str, metric: str, dimensions: list[DimensionTypeDef]) -> int:
            return int(sum(p["Sum"] for p in datapoints(namespace, metric, dimensions, Statistics=["Sum"])))

        requests = total("AWS/Lambda", "Invocations", lambda_dims)
        function_errors = total("AWS/Lambda", "Errors", lambda_dims)
        server_errors = total(contract.METRICS_NAMESPACE, contract.SERVER_ERRORS_METRIC, handler_dims)
        p99_values = [
            p["ExtendedStatistics"]["p99"]
            for p in datapoints("AWS/Lambda", "Duration", lambda_dims, ExtendedStatistics=["p99"])
            if "p99" in (p.get("ExtendedStatistics") or {})
        ]
        return Health(requests, function_errors + server_errors, max(p99_values) if p99_values else None)

    def read_pooled(self, model_name: str, model_version: str, since: datetime) -> Health:
        """Requests, server errors and p99 latency of one model version served by the pooled function:
        the per-version metrics the pool publishes while the model has a canary (AWS/Lambda's metrics
        are per function, and the pool's function serves every pooled model)."""
        end = datetime.now(UTC) + timedelta(seconds=60)
        dims: list[DimensionTypeDef] = [
            {"Name": k, "Value": v}
            for k, v in contract.version_dimensions(
                model_name, model_version, contract.POOL_METRICS_FUNCTION_VERSION
            ).items()
        ]

        def datapoints(metric: str, **statistic: Any) -> list:
            return self.client.get_metric_statistics(
                Namespace=contract.METRICS_NAMESPACE,
                MetricName=metric,
                Dimensions=dims,
                StartTime=since,
                EndTime=end,
                Period=60,
                **statistic,
            )["Datapoints"]

        requests = int(sum(p["Sum"] for p in datapoints(contract.REQUESTS_METRIC, Statistics=["Sum"])))
        errors = int(sum(p["Sum"] for p in datapoints(contract.SERVER_ERRORS_METRIC, Statistics=["Sum"])))
        p99_values = [
            p["ExtendedStatistics"]["p99"]
            for p in datapoints(contract.LATENCY_METRIC, ExtendedStatistics=["p99"])
            if "p99" in (p.get("ExtendedStatistics") or {})
        ]
        return Health(requests, errors, max(p99_values) if p99_values else None)
