"""Lambda's execution rules on the running local platform, with functions deployed beside the models:
the 10 s init limit and its retry inside the first invocation, and the runtime's OS refusing a layer
whose shared objects need a newer glibc than it has."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests

from model_registry.core import contract
from tests.e2e.conftest import RunningPlatform
from tests.e2e.functions import add_function, allow_api_gateway

pytestmark = pytest.mark.e2e

SLOW_INIT = """
import os, time

time.sleep(float(os.environ["INIT_SLEEP_S"]))  # a slow init, like a large model load


def handler(event, context):
    return {"statusCode": 200, "body": "served", "headers": {"content-type": "text/plain"}}
"""

IMPORTS_NUMPY = """
import numpy


def handler(event, context):
    return {"statusCode": 200, "body": numpy.__version__, "headers": {"content-type": "text/plain"}}
"""


def _timed_get(url: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(url, timeout=120)
    return response, time.monotonic() - started


def _log_lines(running: RunningPlatform, function: str, needle: str, deadline_s: float = 15) -> list[str]:
    """The lines of the function's log group that contain ``needle`` (telemetry flushes every second)."""
    logs = boto3.client("logs", endpoint_url=running.settings.endpoint_url)
    group = f"/aws/lambda/{function}"
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        except logs.exceptions.ResourceNotFoundException:  # created with the first flush
            streams = []
        lines = [
            event["message"]
            for stream in streams
            for event in logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])[
                "events"
            ]
            if needle in event["message"]
        ]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def test_an_init_over_10_s_is_retried_within_the_first_invocations_timeout(running: RunningPlatform) -> None:
    """ "If the Init phase times out, Lambda retries the initialization at the time of the first function
    invocation, with the function's configured timeout"
    (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib).
    A 12 s init is cut at 10 s and then fits in a 25 s timeout; a 40 s init does not fit in 5 s."""
    fits = add_function(running, "slow-init", SLOW_INIT, timeout_s=25, environment={"INIT_SLEEP_S": "12"})
    too_slow = add_function(
        running, "slower-init", SLOW_INIT, timeout_s=5, environment={"INIT_SLEEP_S": "40"}
    )
    with ThreadPoolExecutor(2) as pool:
        (served, served_s), (failed, failed_s) = pool.map(_timed_get, [f"{fits}/a", f"{too_slow}/a"])
    assert served.status_code == 200 and served.text == "served"
    assert served_s >= 10 + 12 - 0.5, "the init was not cut at 10 s and run again"
    assert failed.status_code == 500 and failed.json() == {"message": "Internal Server Error"}
    assert failed_s >= 10 + 5 - 0.5
    assert _log_lines(running, "slow-init", "Status: timeout")  # the cut first init, as Lambda reports it
    warm, warm_s = _timed_get(f"{fits}/b")
    assert warm.status_code == 200 and warm_s < 10  # the retried environment stays and serves


def test_a_layer_that_needs_a_newer_glibc_than_the_runtimes_os_is_not_imported(
    running: RunningPlatform,
) -> None:
    """The platform's own scikit-learn layer on Amazon Linux 2023 (python3.12, glibc 2.34) imports numpy;
    the same layer under python3.11 (Amazon Linux 2, glibc 2.26) fails with Runtime.ImportModuleError,
    as it would on Lambda, although this machine's glibc would load it."""
    lam = boto3.client("lambda", endpoint_url=running.settings.endpoint_url)
    iris = contract.function_name(running.settings.platform_name, "iris")
    layers = [layer["Arn"] for layer in lam.get_function_configuration(FunctionName=iris)["Layers"]]
    al2023 = add_function(running, "numpy-al2023", IMPORTS_NUMPY, timeout_s=10, layers=layers)
    al2 = add_function(running, "numpy-al2", IMPORTS_NUMPY, timeout_s=10, layers=layers, runtime="python3.11")
    imported = requests.get(f"{al2023}/a", timeout=120)
    assert imported.status_code == 200 and imported.text[:1].isdigit()
    refused = requests.get(f"{al2}/a", timeout=120)
    assert refused.status_code == 500 and refused.json() == {"message": "Internal Server Error"}
    (error,) = _log_lines(running, "numpy-al2", "[ERROR]")
    assert error.startswith("[ERROR] Runtime.ImportModuleError: Unable to import module 'app'")
    assert "GLIBC_2.2" in error and "glibc 2.26" in error, error
    assert running.platform.server.plane.environment_counts().get("numpy-al2", (0, 0)) == (0, 0)


HELLO = """
def handler(event, context):
    return {"statusCode": 200, "body": "hello", "headers": {"content-type": "text/plain"}}
"""


def test_api_gateway_invokes_only_functions_whose_resource_policy_allows_it(running: RunningPlatform) -> None:
    """Without lambda:InvokeFunction for apigateway.amazonaws.com in the function's resource policy, an HTTP
    API answers 500 (https://repost.aws/knowledge-center/api-gateway-http-lambda-integrations). The model
    routes answering at all shows Terraform's aws_lambda_permission is in place."""
    url = add_function(running, "no-permission", HELLO, permission=False)
    refused = requests.get(f"{url}/a", timeout=60)
    assert refused.status_code == 500 and refused.json() == {"message": "Internal Server Error"}
    allow_api_gateway(running, "no-permission")
    deadline = time.monotonic() + 30  # the data plane re-reads policies every 5 s
    while (answer := requests.get(f"{url}/a", timeout=60)).status_code != 200:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)
    assert answer.text == "hello"
