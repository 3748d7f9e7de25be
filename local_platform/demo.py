"""`make demo`: a scripted tour of canary, promote and rollback on the platform `make up` runs."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

Say = Callable[[str], None]


def fire(url: str, body: dict[str, Any], total: int, clients: int = 8) -> dict[str, list[float]]:
    """Send ``total`` requests from ``clients`` threads; latencies (ms) per answering model version."""
    per_client = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]

    def run(n: int) -> list[tuple[str, float]]:
        out = []
        with requests.Session() as session:
            for _ in range(n):
                start = time.perf_counter()
                response = session.post(url, json=body, timeout=60)
                elapsed = (time.perf_counter() - start) * 1000
                out.append(
                    (
                        response.json().get("model_version", f"HTTP {response.status_code}")
                        if response.headers.get("content-type", "").startswith("application/json")
                        else f"HTTP {response.status_code}",
                        elapsed,
                    )
                )
        return out

    latencies: dict[str, list[float]] = defaultdict(list)
    with ThreadPoolExecutor(clients) as pool:
        for results in pool.map(run, per_client):
            for version, elapsed in results:
                latencies[version].append(elapsed)
    return dict(latencies)


def report(latencies: dict[str, list[float]], say: Say) -> None:
    total = sum(len(v) for v in latencies.values())
    for version, values in sorted(latencies.items()):
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        say(
            f"    version {version:>3}: {len(values):5d} requests ({len(values) / total:6.1%})  "
            f"p50 {statistics.median(values):6.1f} ms  p99 {p99:6.1f} ms"
        )


def run_demo(url: str, state_dir: Path, say: Say = print) -> int:
    """Register a second iris version, canary it at 20%, measure, promote, roll back."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from examples.models import train_iris
    from model_registry.core import aws
    from model_registry.core.settings import Settings
    from model_registry.registry.service import RegistryService
    from model_registry.rollout import Rollouts

    settings = Settings.from_env()
    service = RegistryService.from_settings(settings)
    rollouts = Rollouts(
        service,
        aws.client_for("lambda", settings),
        settings.platform_name,
        aws.client_for("cloudwatch", settings),
        actor="make-demo",
    )
    (state_dir / "demo").mkdir(parents=True, exist_ok=True)
    iris = train_iris(state_dir / "demo")
    candidate = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=500)).fit(
        iris.X_test, iris.y_test
    )
    path = state_dir / "demo" / "iris-candidate.skops"
    sio.dump(candidate, path)
    record = service.register(
        "iris",
        path,
        feature_names=iris.feature_names,
        description="demo candidate (C=0.3)",
        created_by="make-demo",
        progress=False,
    )
    say(f"1. registered iris v{record.version}")
    if rollouts.alias_state("iris").canary_version:
        rollouts.rollback("iris", reason="demo start")
    event = rollouts.start_canary("iris", record.version, 20)
    say(
        f"2. canary: Lambda version {event.after.canary_version} (model v{record.version}) gets 20%, "
        f"stable stays on Lambda version {event.after.stable_version}"
    )
    body = {"instances": iris.X_test[:1].tolist()}
    endpoint = f"{url}/models/iris/predict"
    say("3. 1,000 requests from 8 clients (latencies include the cold starts of new environments):")
    report(fire(endpoint, body, 1000), say)
    rollouts.promote("iris")
    time.sleep(0.5)
    say(f"4. promoted v{record.version}; 200 requests:")
    report(fire(endpoint, body, 200), say)
    rollouts.rollback("iris", reason="demo")
    time.sleep(0.5)
    say("5. rolled back; 200 requests:")
    report(fire(endpoint, body, 200), say)
    say("6. history (newest first):")
    for item in rollouts.journal.events("iris", limit=4):
        say(f"    {item['at']}  {item['action']:8} by {item['by']}  {item.get('outcome', '')}")
    return 0
