"""The emulator (registry, artifact store and AWS control plane in one) stops answering under a running
local platform: warm environments keep serving, a cold start answers 503 with Retry-After, and the
platform recovers by itself once the emulator answers again.

The emulator is frozen with SIGSTOP, not killed: its state lives in memory, and a frozen dependency
(connections accepted, never answered) is the harder fault, since every call runs into a timeout.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import requests

from examples.models import ExampleModel
from tests.e2e.conftest import RunningPlatform
from tests.e2e.targets import settle

pytestmark = pytest.mark.e2e


def test_emulator_outage_warm_serves_cold_is_503_then_recovers(
    running: RunningPlatform, examples: dict[str, ExampleModel]
) -> None:
    rows = examples["iris"].X_test[:3]
    expected = examples["iris"].estimator.predict(rows).tolist()
    url = f"{running.url}/models/iris/predict"
    body = {"instances": rows.tolist()}
    with requests.Session() as session:
        # At least one warm environment of the live version (a rollout just before may still be
        # propagating: wait until the live model answers every request).
        settle(session, url, body, str(running.versions["iris"]), timeout_s=30)
        emulator_pid = running.platform.emulator.process.pid
        os.kill(emulator_pid, signal.SIGSTOP)
        try:
            print(f"{time.strftime('%X')} frozen", flush=True)
            warm = [session.post(url, json=body, timeout=60) for _ in range(20)]
            assert [r.status_code for r in warm] == [200] * 20, [r.text for r in warm if not r.ok]
            assert all(r.json()["predictions"] == expected for r in warm)

            print(f"{time.strftime('%X')} warm done", flush=True)
            assert running.platform.server.plane.reclaim_idle(0) >= 1  # the next request cold-starts
            started = time.monotonic()
            cold = session.post(url, json=body, timeout=90)
            cold_s = time.monotonic() - started
            assert cold.status_code == 503, cold.text
            assert cold.headers.get("Retry-After") and cold.json()["code"] == "dependency_unavailable"
            print(f"cold start with the emulator frozen: 503 after {cold_s:.1f} s")
        finally:
            os.kill(emulator_pid, signal.SIGCONT)

        print(f"{time.strftime('%X')} thawed", flush=True)
        deadline = time.monotonic() + 60
        answers = []
        while True:
            response = session.post(url, json=body, timeout=60)
            answers.append(response.status_code)
            if response.status_code == 200:
                break
            assert response.status_code == 503 and time.monotonic() < deadline, (answers, response.text)
            time.sleep(int(response.headers.get("Retry-After", "1")) / 5)
        assert response.json()["predictions"] == expected
        print(f"recovered after {len(answers) - 1} more 503 answers")
        print(f"{time.strftime('%X')} recovered", flush=True)
        for name, example in examples.items():  # every model serves again
            again = session.post(
                f"{running.url}/models/{name}/predict",
                json={"instances": example.X_test[:2].tolist()},
                timeout=60,
            )
            assert again.status_code == 200, again.text
            expected_rows = example.estimator.predict(example.X_test[:2])
            np.testing.assert_allclose(again.json()["predictions"], expected_rows, rtol=1e-5)
