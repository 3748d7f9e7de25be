"""Telemetry turns handler EMF lines and invocation records into CloudWatch series, counted exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws

from model_registry.local.telemetry import Telemetry, emf_to_datums


def _emf(version: str, errors: int) -> str:
    metrics = [{"Name": "Requests", "Unit": "Count"}, {"Name": "ServerErrors", "Unit": "Count"}]
    return json.dumps(
        {
            "_aws": {
                "Timestamp": 1_700_000_000_000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "ModelPlatform",
                        "Dimensions": [["model", "model_version", "service"]],
                        "Metrics": metrics,
                    }
                ],
            },
            "model": "iris",
            "model_version": version,
            "service": "model-serving",
            "Requests": [1.0],
            "ServerErrors": [float(errors)],
        }
    )


def test_emf_document_to_datums() -> None:
    datums = emf_to_datums(json.loads(_emf("2", 1)))
    assert [(ns, d["MetricName"], d["Value"]) for ns, d in datums] == [
        ("ModelPlatform", "Requests", 1.0),
        ("ModelPlatform", "ServerErrors", 1.0),
    ]
    assert {x["Name"] for x in datums[0][1]["Dimensions"]} == {"model", "model_version", "service"}


def _sum(cloudwatch, namespace: str, name: str, dimensions: dict[str, str]) -> float:
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_counts_survive_aggregation_exactly(monkeypatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        telemetry = Telemetry(logs, cloudwatch)
        for i in range(300):
            telemetry.log("/aws/lambda/f", "stream", _emf("2", errors=int(i % 3 == 0)))
            telemetry.metric(
                "AWS/Lambda", "Invocations", 1, "Count", {"FunctionName": "f", "ExecutedVersion": "5"}
            )
        telemetry.flush()
        dims = {"model": "iris", "model_version": "2", "service": "model-serving"}
        assert _sum(cloudwatch, "ModelPlatform", "Requests", dims) == 300
        assert _sum(cloudwatch, "ModelPlatform", "ServerErrors", dims) == 100
        assert _sum(cloudwatch, "AWS/Lambda", "Invocations", {"ExecutedVersion": "5"}) == 300
        events = logs.get_log_events(logGroupName="/aws/lambda/f", logStreamName="stream")["events"]
        assert len(events) == 300
