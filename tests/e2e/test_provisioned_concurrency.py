"""Provisioned concurrency on the running local platform: rollouts put it on the live versions (Lambda
refuses it on a weighted alias) and the data plane keeps that many environments initialised ahead of
traffic, so a canary's first requests find a warm environment."""

from __future__ import annotations

import time

import pytest
import requests

from examples.models import ExampleModel
from model_registry.core import contract
from tests.e2e.conftest import RunningPlatform
from tests.e2e.test_rollouts_live import _rollouts

pytestmark = pytest.mark.e2e
MODEL = "breast-cancer"  # terraform.tfvars gives it provisioned_concurrency = 1


def _wait_provisioned(running: RunningPlatform, function: str, version: str) -> list[int]:
    deadline = time.monotonic() + 90
    while not (pids := running.platform.server.plane.provisioned_pids(function).get(version)):
        assert time.monotonic() < deadline, f"no provisioned environment of {function}:{version}"
        time.sleep(0.5)
    return pids


def test_canary_versions_are_warm_before_their_first_request(
    running: RunningPlatform, examples: dict[str, ExampleModel]
) -> None:
    rollouts = _rollouts(running)
    function = rollouts.function_name(MODEL)
    assert rollouts.traffic.wanted_provisioned(MODEL) == 1  # from Terraform, through the function's tag
    stable = rollouts.alias_state(MODEL).stable_version
    assert rollouts.traffic.provisioned(MODEL) == {stable: 1}
    _wait_provisioned(running, function, stable)

    example = examples[MODEL]
    record = rollouts.service.register(
        MODEL, example.artifact, description="provisioned canary", progress=False
    )
    canary = rollouts.start_canary(MODEL, record.version, 50).lambda_version
    try:
        assert rollouts.traffic.provisioned(MODEL) == {stable: 1, canary: 1}
        canary_pids = _wait_provisioned(running, function, canary)
        before = sorted(running.platform.server.plane.worker_pids())
        versions = set()
        with requests.Session() as session:
            for _ in range(40):  # one at a time: each version's provisioned environment serves them all
                response = session.post(
                    f"{running.url}/models/{MODEL}/predict",
                    json={"instances": example.X_test[:1].tolist()},
                    timeout=60,
                )
                assert response.status_code == 200, response.text
                versions.add(response.headers[contract.VERSION_HEADER])
        assert versions == {str(running.versions[MODEL]), str(record.version)}  # both versions served
        assert sorted(running.platform.server.plane.worker_pids()) == before  # and no cold start
        assert running.platform.server.plane.provisioned_pids(function)[canary] == canary_pids

        rollouts.promote(MODEL)
        assert rollouts.traffic.provisioned(MODEL) == {canary: 1}  # the old stable version gave its up
        deadline = time.monotonic() + 30
        while stable in running.platform.server.plane.provisioned_pids(function):
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        state = rollouts.alias_state(MODEL)
        if state.canary_version:
            rollouts.rollback(MODEL, reason="test cleanup")
        if rollouts.alias_state(MODEL).stable_version != stable:
            rollouts.rollback(MODEL, reason="test cleanup")  # back to the version the suite expects
    assert rollouts.traffic.provisioned(MODEL) == {stable: 1}
    _wait_provisioned(running, function, stable)  # the data plane follows: fails after 90 s otherwise
