"""The emulator refuses what AWS refuses: each rule of local_platform/aws_rules, with boto3 against
the emulator (moto server plus those rules), the way the platform's own code meets them."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from local_platform.aws_rules.control import AWS_SERVICE_HEADER, set_version_state
from model_registry.core import contract
from tests.helpers import LAMBDA_TRUST_POLICY

pytestmark = pytest.mark.integration


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


@pytest.fixture
def lam(moto_url: str) -> object:
    return boto3.client("lambda", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture
def cloudwatch(moto_url: str) -> object:
    return boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture
def function(lam: object, moto_url: str) -> Iterator[str]:
    """A fresh function (name unique per test) with two published versions."""
    iam = boto3.client("iam", endpoint_url=moto_url, region_name="us-east-1")
    name = f"rules-{uuid.uuid4().hex[:10]}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    lam.create_function(
        FunctionName=name,
        Runtime=contract.DEFAULT_LAMBDA_RUNTIME,
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Publish=True,
    )
    _update(lam, name, Description="second")
    lam.publish_version(FunctionName=name)
    yield name
    lam.delete_function(FunctionName=name)


def _update(lam: object, name: str, **changes: object) -> dict:
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    answer = lam.update_function_configuration(FunctionName=name, **changes)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    return answer


# --------------------------------------------------------------------------- CloudWatch


def _datums(cloudwatch: object, namespace: str, dims: dict[str, str], values: list[float]) -> None:
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "Duration",
                "Unit": "Milliseconds",
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Values": values,
                "Counts": [1.0] * len(values),
            }
        ],
    )


def _stats(cloudwatch: object, namespace: str, dims: dict[str, str], **statistics: object) -> list[dict]:
    now = datetime.now(UTC)
    return cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="Duration",
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        **statistics,
    )["Datapoints"]


def test_statistics_are_returned_only_for_the_exact_dimension_set_published(cloudwatch: object) -> None:
    """GetMetricStatistics: "You must specify the same dimensions that were used when the metrics were
    created" — the rollout gate once asked for a dimension subset Lambda never publishes."""
    namespace = f"Rules{uuid.uuid4().hex[:8]}"
    published = {"FunctionName": "f", "Resource": "f:live", "ExecutedVersion": "3"}
    _datums(cloudwatch, namespace, published, [10.0, 20.0])
    assert sum(p["Sum"] for p in _stats(cloudwatch, namespace, published, Statistics=["Sum"])) == 30.0
    subset = {"FunctionName": "f", "ExecutedVersion": "3"}
    assert _stats(cloudwatch, namespace, subset, Statistics=["Sum"]) == []
    assert _stats(cloudwatch, namespace, {}, Statistics=["Sum"]) == []


def test_percentiles_are_computed_from_published_values(cloudwatch: object) -> None:
    namespace = f"Rules{uuid.uuid4().hex[:8]}"
    dims = {"FunctionName": "f"}
    _datums(cloudwatch, namespace, dims, [float(v) for v in range(1, 101)])  # 1..100 ms
    (point,) = _stats(cloudwatch, namespace, dims, ExtendedStatistics=["p50", "p99", "p100"])
    assert point["ExtendedStatistics"] == {"p50": 50.0, "p99": 99.0, "p100": 100.0}
    with pytest.raises(ClientError) as both:
        _stats(cloudwatch, namespace, dims, Statistics=["Sum"], ExtendedStatistics=["p99"])
    assert _code(both) == "InvalidParameterCombination"
    # A statistic set of many values carries no distribution: no percentile for it.
    sets = f"Rules{uuid.uuid4().hex[:8]}"
    cloudwatch.put_metric_data(
        Namespace=sets,
        MetricData=[
            {
                "MetricName": "Duration",
                "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
                "StatisticValues": {"SampleCount": 10, "Sum": 100, "Minimum": 1, "Maximum": 40},
            }
        ],
    )
    (point,) = _stats(cloudwatch, sets, dims, ExtendedStatistics=["p99"])
    assert "p99" not in point.get("ExtendedStatistics", {})


def test_aws_namespaces_are_reserved_for_aws_services(cloudwatch: object, moto_url: str) -> None:
    """PutMetricData: "You cannot specify a namespace that begins with "AWS/"" — only Lambda (locally,
    the data plane) publishes AWS/Lambda."""
    with pytest.raises(ClientError) as refused:
        _datums(cloudwatch, "AWS/Lambda", {"FunctionName": "f"}, [1.0])
    assert _code(refused) == "InvalidParameterValue" and "AWS/Lambda" in str(refused.value)
    service = boto3.client("cloudwatch", endpoint_url=moto_url, region_name="us-east-1")
    service.meta.events.register(
        "before-sign.cloudwatch.PutMetricData",
        lambda request, **_: request.headers.__setitem__(AWS_SERVICE_HEADER, "lambda"),
    )
    _datums(service, "AWS/Lambda", {"FunctionName": f"f-{uuid.uuid4().hex[:6]}"}, [1.0])


def test_at_most_150_values_per_datum(cloudwatch: object) -> None:
    with pytest.raises(ClientError) as refused:
        _datums(
            cloudwatch, f"Rules{uuid.uuid4().hex[:8]}", {"FunctionName": "f"}, [float(v) for v in range(151)]
        )
    assert _code(refused) == "InvalidParameterValue"


def test_a_dimension_value_is_never_empty(cloudwatch: object) -> None:
    """Why the pooled function (MODEL_NAME "") publishes its aggregate under model "(pool)". botocore
    refuses it before sending; the emulator refuses it too, for a caller that skips that check."""
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="Value"):
        _datums(cloudwatch, f"Rules{uuid.uuid4().hex[:8]}", {"model": ""}, [1.0])
    unvalidated = boto3.client(
        "cloudwatch",
        endpoint_url=cloudwatch.meta.endpoint_url,  # type: ignore[attr-defined]
        region_name="us-east-1",
        config=Config(parameter_validation=False),
    )
    with pytest.raises(ClientError) as refused:
        _datums(unvalidated, f"Rules{uuid.uuid4().hex[:8]}", {"model": ""}, [1.0])
    assert _code(refused) == "InvalidParameterValue"
    _datums(cloudwatch, f"Rules{uuid.uuid4().hex[:8]}", {"model": "(pool)"}, [1.0])


# --------------------------------------------------------------------------- Lambda: concurrency


def _reserved_elsewhere(lam: object) -> int:
    names = [
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    return sum(
        lam.get_function_concurrency(FunctionName=n).get("ReservedConcurrentExecutions", 0) for n in names
    )


def test_the_account_keeps_100_unreserved_concurrency(lam: object, function: str) -> None:
    """ "You can reserve up to the Unreserved account concurrency value that is shown, minus 100" at the
    default quota of 1,000 (configuration-concurrency.html)."""
    available = 1000 - 100 - _reserved_elsewhere(lam)
    with pytest.raises(ClientError) as refused:
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=available + 1)
    assert _code(refused) == "InvalidParameterValueException" and "[100]" in str(refused.value)
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=available)
    lam.delete_function_concurrency(FunctionName=function)


def test_provisioned_concurrency_fits_in_reserved_concurrency(lam: object, function: str) -> None:
    """ "You can't allocate more provisioned concurrency than reserved concurrency for a function",
    counted over all its versions and aliases (provisioned-concurrency.html)."""
    lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=3)
    lam.put_provisioned_concurrency_config(
        FunctionName=function, Qualifier="1", ProvisionedConcurrentExecutions=2
    )
    with pytest.raises(ClientError) as over:
        lam.put_provisioned_concurrency_config(
            FunctionName=function, Qualifier="2", ProvisionedConcurrentExecutions=2
        )
    assert _code(over) == "InvalidParameterValueException" and "reserved concurrency (3)" in str(over.value)
    with pytest.raises(ClientError) as lowered:
        lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=1)
    assert _code(lowered) == "InvalidParameterValueException"
    lam.put_provisioned_concurrency_config(
        FunctionName=function, Qualifier="2", ProvisionedConcurrentExecutions=1
    )
    with pytest.raises(ClientError) as latest:
        lam.put_provisioned_concurrency_config(
            FunctionName=function, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert _code(latest) == "InvalidParameterValueException"
    for version in ("1", "2"):
        lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier=version)


def test_provisioned_concurrency_is_in_progress_before_it_is_ready(lam: object, function: str) -> None:
    """ "It can take a few minutes to allocate provisioned concurrency": IN_PROGRESS, then READY."""
    put = lam.put_provisioned_concurrency_config(
        FunctionName=function, Qualifier="1", ProvisionedConcurrentExecutions=1
    )
    assert put["Status"] == "IN_PROGRESS" and put["AvailableProvisionedConcurrentExecutions"] == 0
    deadline = time.monotonic() + 30
    while (status := lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="1"))[
        "Status"
    ] != "READY":
        assert status["Status"] == "IN_PROGRESS" and time.monotonic() < deadline
        time.sleep(0.2)
    assert status["AvailableProvisionedConcurrentExecutions"] == 1
    lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier="1")


def test_provisioned_concurrency_and_alias_weights_exclude_each_other(lam: object, function: str) -> None:
    lam.create_alias(
        FunctionName=function,
        Name="weighted",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    with pytest.raises(ClientError) as weighted:
        lam.put_provisioned_concurrency_config(
            FunctionName=function, Qualifier="weighted", ProvisionedConcurrentExecutions=1
        )
    assert _code(weighted) == "InvalidParameterValueException"
    lam.create_alias(FunctionName=function, Name="plain", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(
        FunctionName=function, Qualifier="plain", ProvisionedConcurrentExecutions=1
    )
    with pytest.raises(ClientError) as weights_added:
        lam.update_alias(
            FunctionName=function, Name="plain", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}
        )
    assert _code(weights_added) == "InvalidParameterValueException"
    lam.delete_provisioned_concurrency_config(FunctionName=function, Qualifier="plain")
    for alias in ("weighted", "plain"):
        lam.delete_alias(FunctionName=function, Name=alias)


# --------------------------------------------------------------------------- Lambda: updates and revisions


def test_an_update_in_progress_blocks_other_updates_and_publications(lam: object, function: str) -> None:
    """ "While the update is in progress ... UpdateFunctionCode, UpdateFunctionConfiguration and
    PublishVersion fail" (functions-states.html)."""
    lam.get_waiter("function_updated_v2").wait(FunctionName=function, WaiterConfig={"Delay": 1})
    lam.update_function_configuration(FunctionName=function, MemorySize=256)
    assert lam.get_function_configuration(FunctionName=function)["LastUpdateStatus"] == "InProgress"
    for call in (
        lambda: lam.update_function_configuration(FunctionName=function, MemorySize=512),
        lambda: lam.publish_version(FunctionName=function),
    ):
        with pytest.raises(ClientError) as conflict:
            call()
        assert _code(conflict) == "ResourceConflictException" and "in progress" in str(conflict.value)
    lam.get_waiter("function_updated_v2").wait(FunctionName=function, WaiterConfig={"Delay": 1})
    assert lam.get_function_configuration(FunctionName=function)["LastUpdateStatus"] == "Successful"
    assert lam.publish_version(FunctionName=function)["MemorySize"] == 256


def test_stale_revision_ids_are_refused(lam: object, function: str) -> None:
    stale = lam.get_function_configuration(FunctionName=function)["RevisionId"]
    fresh = _update(lam, function, Description="changed meanwhile")["RevisionId"]
    assert fresh != stale
    for call in (
        lambda: lam.update_function_configuration(FunctionName=function, MemorySize=256, RevisionId=stale),
        lambda: lam.publish_version(FunctionName=function, RevisionId=stale),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "PreconditionFailedException"
    assert lam.publish_version(
        FunctionName=function, RevisionId=lam.get_function_configuration(FunctionName=function)["RevisionId"]
    )
    alias = lam.create_alias(FunctionName=function, Name="live", FunctionVersion="1")
    lam.update_alias(FunctionName=function, Name="live", FunctionVersion="2", RevisionId=alias["RevisionId"])
    with pytest.raises(ClientError) as moved:
        lam.update_alias(
            FunctionName=function, Name="live", FunctionVersion="1", RevisionId=alias["RevisionId"]
        )
    assert _code(moved) == "PreconditionFailedException"
    lam.delete_alias(FunctionName=function, Name="live")


def test_version_numbers_are_never_reused(lam: object, function: str) -> None:
    _update(lam, function, Description="third")
    third = lam.publish_version(FunctionName=function)["Version"]
    assert third == "3"
    lam.delete_function(FunctionName=function, Qualifier=third)
    _update(lam, function, Description="fourth")
    assert lam.publish_version(FunctionName=function)["Version"] == "4"
    assert lam.publish_version(FunctionName=function)["Version"] == "4"  # nothing changed: nothing new


def test_a_version_an_alias_routes_to_cannot_be_deleted(lam: object, function: str) -> None:
    lam.create_alias(
        FunctionName=function,
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    for version in ("1", "2"):
        with pytest.raises(ClientError) as refused:
            lam.delete_function(FunctionName=function, Qualifier=version)
        assert _code(refused) == "ResourceConflictException" and "live" in str(refused.value)
    lam.delete_alias(FunctionName=function, Name="live")


# --------------------------------------------------------------------------- Lambda: SnapStart and states


def test_snap_start_only_on_runtimes_that_offer_it(lam: object, function: str, moto_url: str) -> None:
    """SnapStart for Python needs python3.12 or later (snapstart.html)."""
    with pytest.raises(ClientError) as old_runtime:
        _update(lam, function, Runtime="python3.11", SnapStart={"ApplyOn": "PublishedVersions"})
    assert _code(old_runtime) == "InvalidParameterValueException" and "python3.11" in str(old_runtime.value)
    _update(lam, function, SnapStart={"ApplyOn": "PublishedVersions"})
    assert lam.get_function_configuration(FunctionName=function)["SnapStart"] == {
        "ApplyOn": "PublishedVersions",
        "OptimizationStatus": "Off",  # $LATEST is never restored from a snapshot
    }


def test_snap_start_versions_are_pending_until_their_snapshot_and_inactive_ones_fail_to_invoke(
    lam: object, function: str, moto_url: str
) -> None:
    _update(lam, function, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=function)
    assert version["State"] == "Pending" and version["StateReasonCode"] == "Creating"
    with pytest.raises(ClientError) as pending:
        lam.invoke(FunctionName=function, Qualifier=version["Version"], Payload=b"{}")
    assert _code(pending) == "ResourceConflictException"
    with pytest.raises(ClientError) as with_pc:  # "You can't use SnapStart and provisioned concurrency"
        lam.put_provisioned_concurrency_config(
            FunctionName=function, Qualifier=version["Version"], ProvisionedConcurrentExecutions=1
        )
    assert _code(with_pc) == "InvalidParameterValueException"
    set_version_state(moto_url, function, version["Version"], "Active")  # the data plane took the snapshot
    assert (
        lam.get_function_configuration(FunctionName=function, Qualifier=version["Version"])["State"]
        == "Active"
    )
    set_version_state(moto_url, function, version["Version"], "Inactive", "idle for 14 days", "Idle")
    with pytest.raises(ClientError) as inactive:
        lam.invoke(FunctionName=function, Qualifier=version["Version"], Payload=b"{}")
    assert _code(inactive) == "SnapStartNotReadyException"
    config = lam.get_function_configuration(FunctionName=function, Qualifier=version["Version"])
    assert (config["State"], config["StateReasonCode"]) == ("Pending", "Restoring")  # re-activation started
    with pytest.raises(WaiterError):  # not Active until the data plane took the snapshot again
        lam.get_waiter("published_version_active").wait(
            FunctionName=function, Qualifier=version["Version"], WaiterConfig={"Delay": 1, "MaxAttempts": 2}
        )
