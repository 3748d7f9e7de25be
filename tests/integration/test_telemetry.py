"""The data plane's telemetry: the handler's EMF documents (as powertools writes them) and Lambda's own
metrics reach the emulator's CloudWatch counted exactly, as distributions CloudWatch takes percentiles
of, with AWS/Lambda published as the AWS service."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from local_platform.aws_rules.control import AWS_SERVICE_HEADER
from local_platform.telemetry import Telemetry, emf_to_datums
from model_registry.core import contract

pytestmark = pytest.mark.integration


def _emf(model: str, version: str, server_errors: int) -> str:
    """One EMF document as the handler's powertools Metrics writes it."""
    metrics = Metrics(namespace=contract.METRICS_NAMESPACE, service=contract.METRICS_SERVICE)
    metrics.set_default_dimensions(**contract.version_dimensions(model, version, "7"))
    metrics.add_metric(name=contract.SERVER_ERRORS_METRIC, unit=MetricUnit.Count, value=server_errors)
    metrics.add_metric(name="PredictLatency", unit=MetricUnit.Milliseconds, value=1.5 + server_errors)
    document = metrics.serialize_metric_set()
    metrics.clear_metrics()
    metrics.clear_default_dimensions()
    return json.dumps(document)


def test_powertools_emf_documents_become_datums_with_their_dimension_set() -> None:
    datums = emf_to_datums(json.loads(_emf("iris", "2", 1)))
    names = {(namespace, datum["MetricName"], datum["Value"]) for namespace, datum in datums}
    assert names == {
        (contract.METRICS_NAMESPACE, contract.SERVER_ERRORS_METRIC, 1.0),
        (contract.METRICS_NAMESPACE, "PredictLatency", 2.5),
    }
    dimensions = {d["Name"]: d["Value"] for d in datums[0][1]["Dimensions"]}
    assert dimensions == contract.version_dimensions("iris", "2", "7")


def _statistics(cloudwatch, namespace: str, name: str, dimensions: dict[str, str], **statistics) -> list:
    now = datetime.now(UTC)
    return cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        **statistics,
    )["Datapoints"]


def test_counts_and_percentiles_survive_aggregation_exactly(moto_url: str) -> None:
    def client(service: str):
        return boto3.client(service, endpoint_url=moto_url, region_name="us-east-1")

    service = client("cloudwatch")
    service.meta.events.register(
        "before-sign.cloudwatch.PutMetricData",
        lambda request, **_: request.headers.__setitem__(AWS_SERVICE_HEADER, "lambda"),
    )
    telemetry = Telemetry(client("logs"), client("cloudwatch"), service)
    model, group = f"m{uuid.uuid4().hex[:8]}", f"/aws/lambda/t-{uuid.uuid4().hex[:8]}"
    lambda_dims = {"FunctionName": group, "Resource": f"{group}:live", "ExecutedVersion": "5"}
    for i in range(300):
        telemetry.log(group, "stream", _emf(model, "2", server_errors=int(i % 3 == 0)))
        telemetry.metric("AWS/Lambda", "Invocations", 1, "Count", lambda_dims)
        telemetry.metric("AWS/Lambda", "Duration", float(i % 100 + 1), "Milliseconds", lambda_dims)
    telemetry.flush()
    assert telemetry.errors == 0  # AWS/Lambda went out as the service: the emulator took it
    cloudwatch = client("cloudwatch")
    handler_dims = contract.version_dimensions(model, "2", "7")
    errors = _statistics(
        cloudwatch,
        contract.METRICS_NAMESPACE,
        contract.SERVER_ERRORS_METRIC,
        handler_dims,
        Statistics=["Sum"],
    )
    assert sum(p["Sum"] for p in errors) == 100
    invocations = _statistics(cloudwatch, "AWS/Lambda", "Invocations", lambda_dims, Statistics=["Sum"])
    assert sum(p["Sum"] for p in invocations) == 300
    (duration,) = _statistics(cloudwatch, "AWS/Lambda", "Duration", lambda_dims, ExtendedStatistics=["p99"])
    assert duration["ExtendedStatistics"] == {"p99": 99.0}
    events = client("logs").get_log_events(logGroupName=group, logStreamName="stream")["events"]
    assert len(events) == 300
