"""A sustained run on the local platform: zero failed requests, and memory of the plane and workers flat."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import RunningPlatform

pytestmark = pytest.mark.e2e
# 30 s in make test (memory compared at 10 s and at the end); make bench soaks for SOAK_SECONDS=300.
DURATION_S = int(os.environ.get("SOAK_SECONDS", "30"))
CLIENTS = 4


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_sustained_load_fails_nothing_and_memory_stays_flat(running: RunningPlatform) -> None:
    url = f"{running.url}/models/breast-cancer/predict"
    body = {"instances": [[13.0] * 30]}
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:  # a timeout or a reset connection is a failed request, not a silently ended client
                    response = session.post(url, json=body, timeout=60)
                    failure = None if response.status_code == 200 else f"{response.status_code}"
                except requests.RequestException as exc:
                    failure = repr(exc)
                with lock:
                    counts["failed" if failure else "ok"] += 1
                    if failure:
                        failures.append(failure)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    plane = running.platform.server.plane
    time.sleep(10)  # environments started and warm
    workers = plane.worker_pids()
    start = {"plane": _rss_kb(os.getpid()), **{str(p): _rss_kb(p) for p in workers}}
    time.sleep(DURATION_S - 10)
    end = {
        "plane": _rss_kb(os.getpid()),
        **{str(p): _rss_kb(p) for p in workers if Path(f"/proc/{p}").exists()},
    }
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    print(
        f"{counts} in {DURATION_S} s from {CLIENTS} clients; RSS kB at 10 s -> {DURATION_S} s: "
        + ", ".join(f"{k}: {start[k]} -> {end.get(k)}" for k in start)
    )
    assert counts["failed"] == 0, failures[:5]
    assert counts["ok"] >= 100  # load was applied (throughput itself is measured by make bench)
    assert not any(thread.is_alive() for thread in threads), "a client never came back"
    assert set(end) == set(start), "an execution environment died under load"
    for key, before in start.items():
        assert end[key] <= before * 1.10 + 10_240, f"{key} grew from {before} kB to {end[key]} kB"
