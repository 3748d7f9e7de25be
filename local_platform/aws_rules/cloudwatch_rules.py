"""CloudWatch's rules that moto does not enforce, added to its CloudWatch service.

- ``GetMetricStatistics`` returns only the series published with exactly the requested dimensions:
  "If a specific combination of dimensions was not published, you can't retrieve statistics for it.
  You must specify the same dimensions that were used when the metrics were created"
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html).
  moto matches the requested dimensions as a subset, which hid a rollout gate querying a dimension set
  Lambda never publishes.
- Percentile statistics (``ExtendedStatistics``, e.g. p99) are computed from the published values;
  "you must specify either Statistics or ExtendedStatistics, but not both". Percentiles are not
  available for values published as statistic sets unless the set holds one value (or min = max),
  nor when any value is negative (CloudWatch's percentile rules, Statistics-definitions.html).
- Namespaces beginning with ``AWS/`` are reserved for AWS services: "You cannot specify a namespace
  that begins with "AWS/"" (PutMetricData). The local data plane, standing in for Lambda, publishes
  ``AWS/Lambda`` with the ``X-Local-Aws-Service`` header, which only the emulator's own AWS services
  may send.
- ``Values`` holds at most 150 values per datum (PutMetricData, MetricDatum.Values).
- A dimension's value is 1 to 1024 characters
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Dimension.html): the pooled
  function, which has no model name of its own, publishes its aggregate under ``(pool)``.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

AWS_SERVICE_HEADER = "X-Local-Aws-Service"
MAX_VALUES_PER_DATUM = 150


def _invalid(message: str) -> Exception:
    from moto.cloudwatch.exceptions import InvalidParameterValue

    return InvalidParameterValue(message)


def percentile(values: list[float], rank: float) -> float:
    """The ``rank``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


def _same_dimensions(datum: Any, wanted: list[dict[str, str]]) -> bool:
    have = {(d.name, d.value) for d in datum.dimensions}
    return have == {(d["Name"], d.get("Value")) for d in wanted}


def _percentile_values(datums: list[Any]) -> list[float] | None:
    """The values a percentile can be computed from, or None when CloudWatch would not compute one."""
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum

    values: list[float] = []
    for datum in datums:
        if isinstance(datum, MetricDatum):
            values.append(datum.value)
        elif isinstance(datum, MetricAggregatedDatum):
            if datum.sample_count != 1 and datum.min != datum.max:
                return None
            values.extend([datum.min] * int(datum.sample_count))
    if not values or any(v < 0 for v in values):
        return None
    return values


def _install_statistics() -> None:
    from moto.cloudwatch.models import CloudWatchBackend, Statistics
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    class ExtendedStatisticsDatapoint(Statistics):
        extended: dict[str, float] | None = None

        @property
        def extended_statistics(self) -> dict[str, float] | None:
            return self.extended

    def get_metric_statistics(
        self: Any,
        namespace: str,
        metric_name: str,
        start_time: Any,
        end_time: Any,
        period: int,
        stats: list[str],
        dimensions: list[dict[str, str]],
        unit: str | None = None,
        extended: list[str] | None = None,
    ) -> list[Any]:
        start_time = start_time.replace(microsecond=0)
        end_time = end_time.replace(microsecond=0)
        if start_time >= end_time:
            raise _invalid("The parameter StartTime must be less than the parameter EndTime.")
        data = sorted(
            (
                md
                for md in self.get_all_metrics()
                if md.namespace == namespace
                and md.name == metric_name
                and start_time <= md.timestamp < end_time
                and (not unit or md.unit == unit)
                and _same_dimensions(md, dimensions or [])
            ),
            key=lambda md: md.timestamp,
        )
        points: list[Any] = []
        step = timedelta(seconds=period)
        bucket_start, index = (data[0].timestamp if data else start_time), 0
        while index < len(data):
            point = ExtendedStatisticsDatapoint(stats, bucket_start)
            while index < len(data) and data[index].timestamp < bucket_start + step:
                point.metric_data.append(data[index])
                point.unit = data[index].unit
                index += 1
            if point.metric_data:
                if extended:
                    values = _percentile_values(point.metric_data)
                    point.extended = (
                        {name: percentile(values, float(name[1:])) for name in extended} if values else {}
                    )
                points.append(point)
            bucket_start += step
        return points

    def get_metric_statistics_response(self: Any) -> ActionResult:
        statistics = self._get_param("Statistics", [])
        extended = self._get_param("ExtendedStatistics", [])
        if bool(statistics) == bool(extended):
            from moto.cloudwatch.exceptions import InvalidParameterCombination

            raise InvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both"
                if statistics
                else "Must specify either Statistics or ExtendedStatistics"
            )
        for name in extended:
            try:
                rank = float(name[1:]) if name.startswith("p") else -1.0
            except ValueError:
                rank = -1.0
            if not 0 <= rank <= 100:
                raise _invalid(f"The value {name} for parameter ExtendedStatistics is not supported.")
        metric_name = self._get_param("MetricName")
        datapoints = self.cloudwatch_backend.get_metric_statistics(
            self._get_param("Namespace"),
            metric_name,
            self._get_param("StartTime"),
            self._get_param("EndTime"),
            self._get_int_param("Period"),
            statistics,
            unit=self._get_param("Unit"),
            dimensions=self._get_param("Dimensions", []),
            extended=extended,
        )
        return ActionResult({"Label": metric_name, "Datapoints": datapoints})

    CloudWatchBackend.get_metric_statistics = get_metric_statistics
    CloudWatchResponse.get_metric_statistics = get_metric_statistics_response


def _install_namespaces() -> None:
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.cloudwatch.responses import CloudWatchResponse

    put = CloudWatchBackend.put_metric_data
    respond = CloudWatchResponse.put_metric_data

    def put_metric_data(self: Any, namespace: str, metric_data: list[dict[str, Any]], **kwargs: Any) -> None:
        for index, datum in enumerate(metric_data, start=1):
            if len(datum.get("Values") or []) > MAX_VALUES_PER_DATUM:
                raise _invalid(
                    f"The collection MetricData.member.{index}.Values must not have a size greater than "
                    f"{MAX_VALUES_PER_DATUM}."
                )
            for dimension in datum.get("Dimensions") or []:
                if not dimension.get("Value"):  # Dimension.Value: minimum length 1
                    raise _invalid(
                        f"The parameter MetricData.member.{index}.Dimensions.member.Value must not be empty "
                        f"(dimension {dimension.get('Name')!r})."
                    )
        return put(self, namespace, metric_data, **kwargs)

    def put_metric_data_response(self: Any) -> Any:
        namespace = self._get_param("Namespace") or ""
        if namespace.startswith("AWS/") and not self.headers.get(AWS_SERVICE_HEADER):
            raise _invalid(f"The value {namespace} for parameter Namespace is invalid.")
        return respond(self)

    CloudWatchBackend.put_metric_data = put_metric_data
    CloudWatchResponse.put_metric_data = put_metric_data_response


def install() -> None:
    """Apply CloudWatch's rules to moto's CloudWatch service (before the server starts)."""
    from moto.cloudwatch import models

    if getattr(models, "_local_rules_installed", False):
        return
    _install_statistics()
    _install_namespaces()
    models._local_rules_installed = True
