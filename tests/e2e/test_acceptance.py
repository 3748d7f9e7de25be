"""Acceptance: the platform as its users meet it, on the local target (every `make test`) or on a real
AWS account (`make aws-acceptance`), with the same test code: every route of every model over the API,
a canary, and a progressive rollout whose gate reads CloudWatch and rolls a broken version back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from examples.models import ExampleModel
from model_registry.rollout import Gate
from tests.e2e.targets import Target, aws_target, confirmation_problem, settle
from tests.helpers import REPO_ROOT, broken_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if request.config.getoption("target") == "aws":
        problem = confirmation_problem()
        if problem:
            pytest.exit(f"make aws-acceptance: {problem}", returncode=2)
        with aws_target(tmp_path_factory.mktemp("aws"), REPO_ROOT) as target:
            yield target
        return
    running = request.getfixturevalue("running")
    yield Target("local", running.url, running.settings, running.versions)


def _like_model(got: list, example: ExampleModel, rows: np.ndarray) -> None:
    expected = example.estimator.predict(rows)
    if example.serve_optimized and expected.dtype.kind == "f":
        np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=1e-5)
    else:
        np.testing.assert_array_equal(np.asarray(got), expected)


@pytest.mark.parametrize("name", ["iris", "breast-cancer", "diabetes"])
def test_every_route_of_every_model(target: Target, examples: dict[str, ExampleModel], name: str) -> None:
    example = examples[name]
    rows = example.X_test[:10]
    version = str(target.versions[name])
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}
    with target.session() as session:
        for path in (f"/models/{name}/predict", f"/models/{name}/versions/{version}/predict"):
            response = session.post(f"{target.url}{path}", json={"instances": rows.tolist()}, timeout=60)
            assert response.status_code == 200, response.text
            assert response.headers["X-Model-Version"] == version
            _like_model(response.json()["predictions"], example, rows)
        for path in (f"/v2/models/{name}/infer", f"/v2/models/{name}/versions/{version}/infer"):
            response = session.post(f"{target.url}{path}", json={"inputs": [tensor]}, timeout=60)
            assert response.status_code == 200, response.text
            outputs = {o["name"]: o for o in response.json()["outputs"]}
            _like_model(outputs["predict"]["data"], example, rows)
        for path in (f"/models/{name}", f"/v2/models/{name}", f"/v2/models/{name}/ready"):
            response = session.get(f"{target.url}{path}", timeout=60)
            assert response.status_code == 200, response.text
        missing = session.post(
            f"{target.url}/models/{name}/versions/999/predict", json={"instances": rows.tolist()}
        )
        assert missing.status_code == 404 and missing.json()["code"] == "version_not_found"


class Traffic:
    """Two clients calling a model until stopped, recording the answering model version or status."""

    def __init__(self, target: Target, name: str, body: dict) -> None:
        self.url, self.body, self.target = f"{target.url}/models/{name}/predict", body, target
        self.answers: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        with self.target.session() as session:
            while not self._stop.is_set():
                try:
                    response = session.post(self.url, json=self.body, timeout=60)
                    self.answers.append((response.status_code, response.headers.get("X-Model-Version", "")))
                except requests.RequestException as exc:
                    self.answers.append((0, repr(exc)))

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def test_a_canary_shares_traffic_and_rolls_back(target: Target, examples: dict[str, ExampleModel]) -> None:
    rollouts = target.rollouts()
    iris = examples["iris"]
    stable = rollouts.alias_state("iris")
    record = rollouts.service.register(
        "iris",
        iris.artifact,
        feature_names=iris.feature_names,
        description="acceptance canary",
        progress=False,
    )
    rollouts.start_canary("iris", record.version, 50)
    try:
        with Traffic(target, "iris", {"instances": iris.X_test[:1].tolist()}) as traffic:
            deadline = time.monotonic() + 300
            while {v for s, v in traffic.answers if s == 200} < {
                str(target.versions["iris"]),
                str(record.version),
            }:
                assert time.monotonic() < deadline, f"the canary never answered: {traffic.answers[-5:]}"
                time.sleep(1)
        assert all(status == 200 for status, _ in traffic.answers), traffic.answers[:5]
    finally:
        rollouts.rollback("iris", reason="acceptance")
    after = rollouts.alias_state("iris")
    assert (after.stable_version, after.canary_version) == (stable.stable_version, None)
    stable_model = rollouts.traffic.pinned_model_version("iris", after.stable_version)
    with target.session() as session:  # the rollback reaches traffic: only the stable model answers
        settle(session, traffic.url, traffic.body, stable_model, target.settle_s)


def test_the_gate_reads_cloudwatch_and_rolls_a_broken_version_back(
    target: Target, examples: dict[str, ExampleModel], tmp_path: Path
) -> None:
    rollouts = target.rollouts()
    stable = rollouts.alias_state("iris").stable_version
    broken = rollouts.service.register(
        "iris",
        broken_model(examples["iris"].X_test, examples["iris"].y_test, tmp_path / "broken.skops"),
        feature_names=examples["iris"].feature_names,
        description="acceptance: broken",
        progress=False,
    )
    messages: list[str] = []
    try:
        with Traffic(target, "iris", {"instances": examples["iris"].X_test[:1].tolist()}) as traffic:
            result = rollouts.progressive(
                "iris",
                broken.version,
                [50, 100],
                interval_s=target.gate_interval_s,
                gate=Gate(max_error_rate=0.01, min_requests=5),
                say=messages.append,
                poll_s=target.gate_poll_s,
            )
    finally:
        print("\n".join(messages))
    assert result.outcome == "rolled-back" and "error rate" in result.reason
    assert any(status == 500 for status, _ in traffic.answers), "the broken canary never served a request"
    assert rollouts.journal.events("iris")[0]["action"] == "auto-rollback"
    state = rollouts.alias_state("iris")
    assert (state.stable_version, state.canary_version) == (stable, None)
    url, body = f"{target.url}/models/iris/predict", {"instances": examples["iris"].X_test[:1].tolist()}
    with target.session() as session:  # the broken version stops answering once the rollback propagates
        seen = settle(
            session, url, body, rollouts.traffic.pinned_model_version("iris", stable), target.settle_s
        )
    assert str(broken.version) not in {version for _, version in seen[-10:]}
