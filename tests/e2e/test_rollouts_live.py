"""Rollouts on the running local platform: under load, automatic rollback, and Terraform staying clean."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import boto3
import pytest
import requests

from examples.models import ExampleModel
from model_registry.registry.service import RegistryService
from model_registry.rollout import Gate, ProgressiveResult, Rollouts
from tests.e2e.conftest import RunningPlatform

pytestmark = pytest.mark.e2e


def _rollouts(running: RunningPlatform) -> Rollouts:
    endpoint = running.settings.endpoint_url
    return Rollouts(
        RegistryService.from_settings(running.settings),
        boto3.client("lambda", endpoint_url=endpoint),
        running.settings.platform_name,
        boto3.client("cloudwatch", endpoint_url=endpoint),
        actor="e2e",
    )


class Load:
    """Clients posting to one model until stopped (each pausing ``pause_s`` between requests), recording
    (start, end, status, version)."""

    def __init__(self, url: str, body: dict, clients: int, pause_s: float = 0.0) -> None:
        self.url, self.body, self.pause_s = url, body, pause_s
        self.records: list[tuple[float, float, int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]
        self._lock = threading.Lock()

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    response = session.post(self.url, json=self.body, timeout=60)
                    status = response.status_code
                    version = (
                        response.json().get("model_version", "") if status == 200 else response.text[:200]
                    )
                except requests.RequestException as exc:
                    status, version = 0, repr(exc)
                with self._lock:
                    self.records.append((start, time.monotonic(), status, version))
                if self.pause_s:  # leaves the cores to what runs beside the load (terraform, say)
                    self._stop.wait(self.pause_s)

    def wait_for(
        self, matching: Callable[[tuple[float, float, int, str]], bool], count: int, timeout_s: float = 120
    ) -> None:
        """Until ``count`` finished requests match (a poll with a deadline, not a fixed sleep)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                seen = sum(1 for record in self.records if matching(record))
            if seen >= count:
                return
            assert time.monotonic() < deadline, f"only {seen} of {count} requests finished in {timeout_s} s"
            time.sleep(0.2)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


HEALTHY = Gate(max_error_rate=0.01, max_p99_ms=5000, min_requests=5)


def progressive_under_load(
    running: RunningPlatform,
    rollouts: Rollouts,
    model: str,
    version: int,
    rows: list,
    gate: Gate,
    interval_s: float,
) -> tuple[ProgressiveResult, list[str]]:
    """A progressive rollout (50 %, then 100 %) of ``version`` while 2 clients post ``rows`` to the model;
    its result and what it said (printed, also when it fails)."""
    messages: list[str] = []
    try:
        with Load(f"{running.url}/models/{model}/predict", {"instances": rows}, clients=2):
            result = rollouts.progressive(
                model, version, [50, 100], interval_s=interval_s, gate=gate, say=messages.append, poll_s=1.0
            )
    finally:
        print("\n".join(messages))
    return result, messages


def test_promote_and_rollback_under_load_lose_nothing(
    running: RunningPlatform, examples: dict[str, ExampleModel]
) -> None:
    rollouts = _rollouts(running)
    iris = examples["iris"]
    old = rollouts.traffic.pinned_model_version("iris", rollouts.alias_state("iris").stable_version)
    new = str(
        rollouts.service.register(
            "iris", iris.artifact, feature_names=iris.feature_names, description="under load", progress=False
        ).version
    )
    rollouts.start_canary("iris", int(new), 50)
    settle = 0.5  # the data plane re-reads the alias every 0.2 s
    with Load(
        f"{running.url}/models/iris/predict", {"instances": iris.X_test[:2].tolist()}, clients=8
    ) as load:
        load.wait_for(lambda r: r[3] in (old, new), count=40)
        rollouts.promote("iris")
        promoted_at = time.monotonic()
        # the new version's environments scale to all 8 clients: cold starts sharing 2 cores
        load.wait_for(lambda r: r[0] > promoted_at + settle, count=40)
        rollback_started = time.monotonic()
        rollouts.rollback("iris", reason="load test")
        rolled_back_at = time.monotonic()
        load.wait_for(lambda r: r[0] > rolled_back_at + settle, count=40)
    failures = [r for r in load.records if r[2] != 200]
    print(f"{len(load.records)} requests during promote and rollback, {len(failures)} failed")
    assert len(load.records) > 200
    assert not failures, failures[:5]
    assert {r[3] for r in load.records} <= {old, new}
    only_new = [r for r in load.records if r[0] > promoted_at + settle and r[1] < rollback_started]
    only_old = [r for r in load.records if r[0] > rolled_back_at + settle]
    assert only_new and {r[3] for r in only_new} == {new}
    assert only_old and {r[3] for r in only_old} == {old}


def test_progressive_rollout_of_a_healthy_version_is_promoted(
    running: RunningPlatform, examples: dict[str, ExampleModel]
) -> None:
    """The gate reads the canary's real traffic from CloudWatch (Lambda's per-version metrics under
    their exact dimension set) and promotes it when it stays healthy."""
    rollouts = _rollouts(running)
    iris = examples["iris"]
    record = rollouts.service.register(
        "iris", iris.artifact, feature_names=iris.feature_names, description="healthy", progress=False
    )
    result, messages = progressive_under_load(
        running, rollouts, "iris", record.version, iris.X_test[:1].tolist(), HEALTHY, interval_s=6
    )
    assert result.outcome == "promoted"
    state = rollouts.alias_state("iris")
    assert (state.stable_version, state.canary_version) == (result.lambda_version, None)
    judged = [m for m in messages if m.startswith("  canary:")]
    assert judged and int(judged[-1].split()[1]) >= 5 and ", p99 " in judged[-1]  # real traffic, real p99
    assert [e["action"] for e in rollouts.journal.events("iris", limit=2)] == ["promote", "rollout"]


def test_p99_gate_rolls_back_a_canary_slower_than_allowed(
    running: RunningPlatform, examples: dict[str, ExampleModel]
) -> None:
    """CloudWatch computes the p99 of the canary's Lambda durations; over the limit, the canary goes."""
    rollouts = _rollouts(running)
    stable = rollouts.alias_state("iris").stable_version
    iris = examples["iris"]
    record = rollouts.service.register(
        "iris", iris.artifact, feature_names=iris.feature_names, description="slow", progress=False
    )
    too_slow = Gate(max_error_rate=0.5, max_p99_ms=0.01, min_requests=5)  # no request is that fast
    result, _ = progressive_under_load(
        running, rollouts, "iris", record.version, iris.X_test[:1].tolist(), too_slow, interval_s=6
    )
    assert result.outcome == "rolled-back" and result.reason.startswith("p99 duration")
    state = rollouts.alias_state("iris")
    assert (state.stable_version, state.canary_version) == (stable, None)


def test_terraform_plan_is_clean_after_rollouts(
    running: RunningPlatform, examples: dict[str, ExampleModel]
) -> None:
    """Rollouts change the alias, its weights and MODEL_VERSION, which Terraform ignores: a plan after a
    canary, a promotion and a rollback proposes nothing."""
    rollouts = _rollouts(running)
    iris = examples["iris"]
    record = rollouts.service.register(
        "iris", iris.artifact, feature_names=iris.feature_names, progress=False
    )
    rollouts.start_canary("iris", record.version, 10)
    rollouts.promote("iris")
    rollouts.rollback("iris", reason="plan check")
    actions = [e["action"] for e in rollouts.journal.events("iris")[:3]]
    assert actions == ["rollback", "promote", "rollout"]
    assert running.platform.deployment.plan() is False
