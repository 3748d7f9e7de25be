"""Forward function logs to the emulator's CloudWatch Logs, and metrics to its CloudWatch.

On AWS, Lambda ships stdout to CloudWatch Logs and CloudWatch extracts EMF metrics from it, and
Lambda publishes AWS/Lambda metrics. The emulator does neither, so the local data plane does both.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

FLUSH_INTERVAL_S = 1.0
MAX_DATUMS_PER_CALL = 500


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


class Telemetry:
    """Buffers log lines and metric data and ships them from a background thread."""

    def __init__(self, logs_client: Any, cloudwatch_client: Any) -> None:
        self._logs = logs_client
        self._cloudwatch = cloudwatch_client
        self._lines: queue.SimpleQueue[tuple[str, str, str, int]] = queue.SimpleQueue()
        self._datums: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self._streams: set[tuple[str, str]] = set()
        self._stop = threading.Event()
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
                for pair in emf_to_datums(json.loads(line)):
                    self._datums.put(pair)
            except (ValueError, KeyError, TypeError):
                pass

    def metric(self, namespace: str, name: str, value: float, unit: str, dimensions: dict[str, str]) -> None:
        self._datums.put(
            (
                namespace,
                {
                    "MetricName": name,
                    "Value": value,
                    "Unit": unit,
                    "Timestamp": datetime.now(UTC),
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                },
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            self.flush()
        self.flush()

    def flush(self) -> None:
        lines: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        while not self._lines.empty():
            group, stream, line, timestamp = self._lines.get()
            lines[(group, stream)].append({"timestamp": timestamp, "message": line or " "})
        for (group, stream), events in lines.items():
            self._put_logs(group, stream, events)
        datums: dict[str, list[dict[str, Any]]] = defaultdict(list)
        while not self._datums.empty():
            namespace, datum = self._datums.get()
            datums[namespace].append(datum)
        for namespace, items in datums.items():
            for start in range(0, len(items), MAX_DATUMS_PER_CALL):
                try:
                    self._cloudwatch.put_metric_data(
                        Namespace=namespace, MetricData=items[start : start + 500]
                    )
                except (ClientError, BotoCoreError):
                    self.errors += 1

    def _put_logs(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        try:
            if (group, stream) not in self._streams:
                with contextlib.suppress(ClientError):  # Terraform made it already
                    self._logs.create_log_group(logGroupName=group)
                with contextlib.suppress(ClientError):
                    self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self._streams.add((group, stream))
            self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except (ClientError, BotoCoreError):
            self.errors += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
