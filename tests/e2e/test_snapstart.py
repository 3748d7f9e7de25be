"""SnapStart on the running local platform, from Terraform to the data plane.

The platform is built for python3.12 and ``terraform/examples/snapstart.tfvars`` turns SnapStart on
for iris. Each published version is initialised once, in a snapshot (model loaded, the handler's
before-snapshot hook run); every cold start is a restore of it, on the function's own runtime.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import numpy as np
import pytest
import requests

from examples.models import ExampleModel
from local_platform.launcher import (
    LocalPlatform,
    local_platform,
    register_and_roll_out_examples,
)
from model_registry.core import aws, contract
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from model_registry.rollout import Rollouts
from tests.helpers import REPO_ROOT, require_interpreter
from tooling.packaging import build_all

pytestmark = pytest.mark.e2e
RUNTIME = "python3.12"
MODEL = "iris"


@dataclass
class SnapPlatform:
    platform: LocalPlatform
    settings: Settings
    versions: dict[str, int]


@pytest.fixture(scope="module")
def snap_platform(
    tmp_path_factory: pytest.TempPathFactory, examples: dict[str, ExampleModel], terraform_bin: str
) -> Iterator[SnapPlatform]:
    require_interpreter(RUNTIME)
    build = REPO_ROOT / "build" / f"lambda-{RUNTIME}"
    build_all(build, RUNTIME, log=lambda m: None)
    state = tmp_path_factory.mktemp("snap-platform")
    var_file = REPO_ROOT / "terraform" / "examples" / "snapstart.tfvars"
    with local_platform(state, build_dir=build, var_files=[var_file], say=lambda m: None) as platform:
        with aws.environment(platform.env):
            settings = Settings.from_env()
            versions = register_and_roll_out_examples(settings, state, lambda m: None)
        yield SnapPlatform(platform, settings, versions)


def _messages(settings: Settings, group: str, version: str, until: Callable[[list[str]], bool]) -> list[str]:
    """The log lines of one function version's environments and snapshots (its streams are named
    ``<date>/[<version>]<id>``, as Lambda names them), read until ``until(lines)`` holds or 30 s passed
    (telemetry flushes every second, later under load)."""
    logs = boto3.client("logs", endpoint_url=settings.endpoint_url)
    deadline = time.monotonic() + 30
    while True:
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        lines = [
            e["message"]
            for s in streams
            if f"/[{version}]" in s["logStreamName"]
            for e in logs.get_log_events(logGroupName=group, logStreamName=s["logStreamName"])["events"]
        ]
        if until(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def _durations(messages: list[str], kind: str) -> list[float]:
    pattern = re.compile(rf"^{kind.upper()}_REPORT {kind} Duration: ([0-9.]+) ms")
    return [float(m.group(1)) for line in messages if (m := pattern.match(line))]


def test_cold_starts_restore_the_version_snapshot(
    snap_platform: SnapPlatform, examples: dict[str, ExampleModel]
) -> None:
    settings, plane = snap_platform.settings, snap_platform.platform.server.plane
    url = snap_platform.platform.url
    lam = boto3.client("lambda", endpoint_url=settings.endpoint_url)
    function = contract.function_name(settings.platform_name, MODEL)
    rollouts = Rollouts(RegistryService.from_settings(settings), lam, settings.platform_name, actor="e2e")
    live = rollouts.alias_state(MODEL).stable_version
    config = lam.get_function_configuration(FunctionName=function, Qualifier=live)
    assert config["Runtime"] == RUNTIME
    assert config["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    other = lam.get_function_configuration(
        FunctionName=contract.function_name(settings.platform_name, "diabetes")
    )
    assert other["SnapStart"]["ApplyOn"] == "None"
    # Terraform's own version 1 (published at apply, pinned to no model version yet) gets a snapshot
    # too: its before-snapshot hook tolerates having no model, so the version goes Active, not Failed.
    deadline = time.monotonic() + 120
    while (first := lam.get_function_configuration(FunctionName=function, Qualifier="1"))[
        "State"
    ] == "Pending":
        assert time.monotonic() < deadline, "version 1 stayed Pending"
        time.sleep(0.5)
    assert first["State"] == "Active", first.get("StateReason")

    example = examples[MODEL]
    rows = example.X_test[:5]
    expected = example.estimator.predict(rows).tolist()
    answers = []
    for _ in range(3):  # three cold starts: each environment is reclaimed before the next request
        plane.reclaim_idle(0)
        response = requests.post(
            f"{url}/models/{MODEL}/predict", json={"instances": rows.tolist()}, timeout=120
        )
        assert response.status_code == 200, response.text
        answers.append(response.json()["predictions"])
    assert all(np.array_equal(a, expected) for a in answers)

    snapshot_pid = plane.snapshot_pids(function)[live]
    assert f"python{RUNTIME.removeprefix('python')}" in os.readlink(f"/proc/{snapshot_pid}/exe")
    messages = _messages(
        settings,
        f"/aws/lambda/{function}",
        live,
        until=lambda lines: (
            len(_durations(lines, "Restore")) >= 3
            and len(_durations(lines, "Init")) >= 1
            and sum('"restored from snapshot"' in m for m in lines) >= 3
        ),
    )
    assert sum('"model loaded"' in m for m in messages) == 1  # init ran once, in the snapshot
    assert sum('"restored from snapshot"' in m for m in messages) == 3  # the after-restore hook, per restore
    init, restores = _durations(messages, "Init"), _durations(messages, "Restore")
    assert len(init) == 1 and len(restores) == 3
    shown = ", ".join(f"{r:.0f}" for r in restores)
    print(f"\nSnapStart {MODEL}: snapshot init {init[0]:.0f} ms; restores {shown} ms")

    # A canary is a new published version: it gets its own snapshot before it serves.
    record = rollouts.service.register(
        MODEL, example.artifact, description="snapstart canary", progress=False
    )
    canary = rollouts.start_canary(MODEL, record.version, 50).lambda_version
    try:
        deadline = time.monotonic() + 120  # housekeeping takes it, as Lambda does at publication
        while canary not in plane.snapshot_pids(function):
            assert time.monotonic() < deadline, "no snapshot of the canary before its traffic"
            time.sleep(0.5)
        seen = set()
        with requests.Session() as session:
            for _ in range(40):
                response = session.post(
                    f"{url}/models/{MODEL}/predict", json={"instances": rows.tolist()}, timeout=120
                )
                assert response.status_code == 200, response.text
                seen.add(response.headers[contract.VERSION_HEADER])
        assert seen == {str(snap_platform.versions[MODEL]), str(record.version)}
        snapshots = plane.snapshot_pids(function)
        assert set(snapshots) >= {live, canary} and snapshots[live] == snapshot_pid
    finally:
        rollouts.rollback(MODEL)


def test_processes_of_snapshots_and_restores_are_all_listed(snap_platform: SnapPlatform) -> None:
    plane = snap_platform.platform.server.plane
    function = contract.function_name(snap_platform.settings.platform_name, MODEL)
    listed = set(plane.worker_pids())
    assert set(plane.snapshot_pids(function).values()) <= listed  # so stopping the platform stops them
