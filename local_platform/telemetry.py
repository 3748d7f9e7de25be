"""Forward function logs to the emulator's CloudWatch Logs, and metrics to its CloudWatch.

On AWS, Lambda ships stdout to CloudWatch Logs and CloudWatch extracts EMF metrics from it, and
Lambda publishes AWS/Lambda metrics. The emulator does neither, so the local data plane does both.
Values go out as distributions (``Values``/``Counts``), not statistic sets, so CloudWatch can compute
percentiles from them, as it does for Lambda's own and for EMF metrics.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

FLUSH_INTERVAL_S = 1.0
MAX_DATUMS_PER_CALL = 500
MAX_VALUES_PER_DATUM = 150  # PutMetricData: at most 150 distinct values per datum
MAX_LOG_EVENTS_PER_CALL = 1000
VALUE_DIGITS = 3  # values are rounded to 0.001 before they are counted (durations: 1 µs)


def emf_to_datums(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) pairs from one Embedded Metric Format document."""
    meta = document.get("_aws") or {}
    timestamp = datetime.fromtimestamp(meta.get("Timestamp", time.time() * 1000) / 1000, UTC)
    datums = []
    for directive in meta.get("CloudWatchMetrics", []):
        namespace = directive.get("Namespace", "")
        for dimension_set in directive.get("Dimensions", []) or [[]]:
            dimensions = [{"Name": d, "Value": str(document[d])} for d in dimension_set if d in document]
            for metric in directive.get("Metrics", []):
                values = document.get(metric["Name"])
                for value in values if isinstance(values, list) else [values]:
                    if isinstance(value, int | float):
                        datums.append(
                            (
                                namespace,
                                {
                                    "MetricName": metric["Name"],
                                    "Dimensions": dimensions,
                                    "Value": float(value),
                                    "Unit": metric.get("Unit", "None"),
                                    "Timestamp": timestamp,
                                },
                            )
                        )
    return datums


SeriesKey = tuple[str, str, str, tuple[tuple[str, str], ...]]  # namespace, name, unit, dimensions


class Telemetry:
    """Buffers log lines and metric values and ships them from a background thread.

    Metric values are counted per series and flush interval and sent as ``Values``/``Counts``: one
    datum per series per second instead of one per request, so a busy data plane never falls behind the
    emulator, and every value still counts in CloudWatch's percentiles. ``AWS/`` namespaces are reserved
    for AWS services: they go out through ``service_cloudwatch_client``, the client of the service the
    data plane stands in for.
    """

    def __init__(
        self, logs_client: Any, cloudwatch_client: Any, service_cloudwatch_client: Any = None
    ) -> None:
        self._logs = logs_client
        self._cloudwatch = cloudwatch_client
        self._service_cloudwatch = service_cloudwatch_client or cloudwatch_client
        self._lines: queue.SimpleQueue[tuple[str, str, str, int]] = queue.SimpleQueue()
        self._series: dict[SeriesKey, Counter[float]] = defaultdict(Counter)
        self._series_lock = threading.Lock()
        self._streams: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="telemetry")
        self.errors = 0

    def start(self) -> Telemetry:
        self._thread.start()
        return self

    def log(self, group: str, stream: str, line: str) -> None:
        """Record one line of a function's output (EMF lines also become metrics)."""
        self._lines.put((group, stream, line, int(time.time() * 1000)))
        if line.startswith("{") and '"_aws"' in line:
            try:
                datums = emf_to_datums(json.loads(line))
            except (ValueError, KeyError, TypeError):
                return
            for namespace, datum in datums:
                dimensions = {d["Name"]: d["Value"] for d in datum["Dimensions"]}
                self.metric(namespace, datum["MetricName"], datum["Value"], datum["Unit"], dimensions)

    def metric(self, namespace: str, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        key = (namespace, name, unit, tuple(sorted(dimensions.items())))
        with self._series_lock:
            self._series[key][round(float(value), VALUE_DIGITS)] += 1

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Ship what is buffered now."""
        with self._flush_lock:
            lines: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
            while not self._lines.empty():
                group, stream, line, timestamp = self._lines.get()
                lines[(group, stream)].append({"timestamp": timestamp, "message": line or " "})
            for (group, stream), events in lines.items():
                self._put_logs(group, stream, events)
            with self._series_lock:
                series, self._series = self._series, defaultdict(Counter)
            now = datetime.now(UTC)
            datums: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for (namespace, name, unit, dimensions), counts in series.items():
                values = sorted(counts.items())
                for start in range(0, len(values), MAX_VALUES_PER_DATUM):
                    chunk = values[start : start + MAX_VALUES_PER_DATUM]
                    datums[namespace].append(
                        {
                            "MetricName": name,
                            "Unit": unit,
                            "Timestamp": now,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
                            "Values": [value for value, _ in chunk],
                            "Counts": [float(count) for _, count in chunk],
                        }
                    )
            for namespace, items in datums.items():
                client = self._service_cloudwatch if namespace.startswith("AWS/") else self._cloudwatch
                for start in range(0, len(items), MAX_DATUMS_PER_CALL):
                    try:
                        client.put_metric_data(
                            Namespace=namespace, MetricData=items[start : start + MAX_DATUMS_PER_CALL]
                        )
                    except (ClientError, BotoCoreError):
                        self.errors += 1

    def _put_logs(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), MAX_LOG_EVENTS_PER_CALL):
            try:
                if (group, stream) not in self._streams:
                    with contextlib.suppress(ClientError):  # Terraform made it already
                        self._logs.create_log_group(logGroupName=group)
                    with contextlib.suppress(ClientError):
                        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
                    self._streams.add((group, stream))
                self._logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=events[start : start + MAX_LOG_EVENTS_PER_CALL],
                )
            except (ClientError, BotoCoreError):
                self.errors += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
