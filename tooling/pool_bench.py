"""The pooled tier at scale, on the local platform: register many models, call a sample of them and
compare with each model's own ``predict``, time the catalog, and run a Zipf load to see the cache.

    python -m tooling.pool_bench --models 10000 --sample 500 --zipf-models 1000 --requests 3000

Writes a JSON report (``--out``, default build/bench/pool.json) and prints a summary. Registration of
the bulk goes through the library in two steps per model (``RegistryService.register`` of the native
artifact, then the model's precompiled ONNX form uploaded and attached with ``set_optimized``): the
``distinct`` models are compiled and validated once each by ``register --optimize``'s own path, which
is timed separately, since compiling the same model ten thousand times measures skl2onnx, not the
registry.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import requests
import skops.io as sio
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier

from local_platform.launcher import local_platform
from model_registry.core import aws, contract
from model_registry.core.settings import Settings
from model_registry.registry.artifacts import sha256_bytes
from model_registry.registry.service import RegistryService

REPO_ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _train(distinct: int, folder: Path) -> list[tuple[Path, Any]]:
    X, y = load_wine(return_X_y=True)
    out = []
    for i in range(distinct):
        model = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=i).fit(X, y)
        path = folder / f"forest-{i}.skops"
        sio.dump(model, path)
        out.append((path, model))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    X, _ = load_wine(return_X_y=True)
    report: dict[str, Any] = {"models": args.models, "distinct": args.distinct}
    state = Path(tempfile.mkdtemp(prefix="pool-bench-"))
    var_file = state / "pool.tfvars.json"
    # A small cache so that a 1,000-model Zipf load evicts: the point is to see the cache work.
    var_file.write_text(
        json.dumps({"pool": {"memory_size": args.pool_memory_mb, "cache_fraction": args.cache_fraction}})
    )
    started = time.perf_counter()
    with local_platform(state / "platform", say=lambda m: None, var_files=[var_file]) as platform:
        report["platform_up_s"] = round(time.perf_counter() - started, 1)
        with aws.environment(platform.env):
            settings = Settings.from_env()
            service = RegistryService.from_settings(settings)
            trained = _train(args.distinct, state)
            # 1. the distinct models through register --optimize's own path (compile, validate, upload)
            compiled = []
            t0 = time.perf_counter()
            for i, (path, _) in enumerate(trained):
                compiled.append(service.register(f"base-{i:03d}", path, progress=False, optimize_rows=X))
            report["register_optimize_s_per_model"] = round((time.perf_counter() - t0) / len(trained), 3)
            onnx_files = []
            for i, record in enumerate(compiled):
                assert record.optimized is not None
                blob = service.artifacts.download_verified(record.optimized.s3_key, record.optimized.sha256)
                onnx = state / f"forest-{i}.onnx"
                onnx.write_bytes(blob)
                onnx_files.append((onnx, record.optimized))
            report["onnx_bytes"] = [o.size_bytes for _, o in onnx_files]

            # 2. the bulk: register + attach the precompiled ONNX form, 4 writers
            names = [f"m-{i:05d}" for i in range(args.models)]

            def register(index: int) -> None:
                name = names[index]
                path, _ = trained[index % args.distinct]
                onnx_path, optimized = onnx_files[index % args.distinct]
                service.register(name, path, progress=False)
                key = service.artifacts.upload(
                    name, onnx_path, sha256_bytes(onnx_path.read_bytes()), "onnx", progress=False
                )
                service.store.set_optimized(name, 1, replace(optimized, s3_key=key))

            t0 = time.perf_counter()
            done = [0]
            lock = threading.Lock()

            def tracked(index: int) -> None:
                register(index)
                with lock:
                    done[0] += 1
                    if done[0] % 1000 == 0:
                        print(f"  registered {done[0]} models ({time.perf_counter() - t0:.0f} s)", flush=True)

            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(tracked, range(args.models)))
            elapsed = time.perf_counter() - t0
            report["bulk_register_s"] = round(elapsed, 1)
            report["bulk_register_models_per_s"] = round(args.models / elapsed, 1)

            # 3. the catalog
            t0 = time.perf_counter()
            everything = service.store.list_models()
            report["list_all_models_s"] = round(time.perf_counter() - t0, 2)
            report["models_in_registry"] = len(everything)
            t0 = time.perf_counter()
            service.store.page_models(100)
            report["first_page_of_100_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            # the command line as an operator runs it: a new process each time, imports included
            for key, command in (("modelctl_models_s", []), ("modelctl_models_all_s", ["--all", "--json"])):
                t0 = time.perf_counter()
                listing = subprocess.run(
                    [sys.executable, "-m", "model_registry.cli", "models", *command],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                report[key] = round(time.perf_counter() - t0, 2)
            report["modelctl_models_all_listed"] = len(json.loads(listing.stdout)["models"])
            t0 = time.perf_counter()
            pages, token = 0, None
            with requests.Session() as session:
                while True:
                    params = {"limit": "1000", **({"next_token": token} if token else {})}
                    page = session.get(f"{platform.url}/models", params=params, timeout=60).json()
                    pages += 1
                    token = page["next_token"]
                    if token is None:
                        break
            report["get_models_all_pages_s"] = round(time.perf_counter() - t0, 2)
            report["get_models_pages"] = pages

            # 4. a sample called through the platform, compared with each model's own predict
            rng = random.Random(7)
            sample = rng.sample(range(args.models), min(args.sample, args.models))
            rows = X[::5]
            wrong = []
            with requests.Session() as session:
                for index in sample:
                    expected = trained[index % args.distinct][1].predict(rows).tolist()
                    response = session.post(
                        f"{platform.url}/models/{names[index]}/predict",
                        json={"instances": rows.tolist()},
                        timeout=60,
                    )
                    if response.status_code != 200 or response.json()["predictions"] != expected:
                        wrong.append((names[index], response.status_code, response.text[:200]))
            report["sample_called"] = len(sample)
            report["sample_wrong"] = len(wrong)
            report["sample_wrong_examples"] = wrong[:5]

            # 5. first request for a model not yet loaded vs. the next one, one client (one warm environment)
            fresh = [i for i in range(args.models) if i not in set(sample)][: args.cold_probes]
            cold: list[float] = []
            warm: list[float] = []
            with requests.Session() as session:
                url = f"{platform.url}/models/{names[0]}/predict"
                session.post(url, json={"instances": rows[:1].tolist()}, timeout=60)  # an environment up
                for index in fresh:
                    url = f"{platform.url}/models/{names[index]}/predict"
                    for bucket in (cold, warm):
                        t0 = time.perf_counter()
                        assert (
                            session.post(url, json={"instances": rows[:1].tolist()}, timeout=60).status_code
                            == 200
                        )
                        bucket.append((time.perf_counter() - t0) * 1000)
            report["first_request_ms"] = {
                "p50": round(_percentile(cold, 50), 2),
                "p99": round(_percentile(cold, 99), 2),
            }
            report["next_request_ms"] = {
                "p50": round(_percentile(warm, 50), 2),
                "p99": round(_percentile(warm, 99), 2),
            }

            report["zipf"] = _zipf(args, platform, settings, names, X[::5])
    return report


def _zipf(
    args: argparse.Namespace, platform: Any, settings: Settings, names: list[str], rows: np.ndarray
) -> dict[str, Any]:
    """A Zipf load over the first ``zipf_models`` models from 4 clients; the pool's cache counters."""
    lock = threading.Lock()
    # 6. Zipf load over the first zipf_models models, 4 clients
    ranks = np.arange(1, args.zipf_models + 1)
    weights = 1 / ranks**args.zipf_s
    weights /= weights.sum()
    picks = np.random.default_rng(11).choice(args.zipf_models, size=args.requests, p=weights)
    # CloudWatch sums whole minutes: start on a fresh minute so the counters hold this load only.
    time.sleep(60 - datetime.now(UTC).second + 1)
    since = datetime.now(UTC).replace(second=0, microsecond=0)
    latencies: list[float] = []
    failures = [0]

    def client(chunk: list[int]) -> None:
        with requests.Session() as session:
            for index in chunk:
                t0 = time.perf_counter()
                r = session.post(
                    f"{platform.url}/models/{names[index]}/predict",
                    json={"instances": rows[:1].tolist()},
                    timeout=60,
                )
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    failures[0] += r.status_code != 200

    chunks = [list(picks[i::4]) for i in range(4)]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result: dict[str, Any] = {
        "models": args.zipf_models,
        "s": args.zipf_s,
        "requests": args.requests,
        "distinct_models_called": len(set(picks.tolist())),
        "failed": failures[0],
        "seconds": round(time.perf_counter() - t0, 1),
        "p50_ms": round(_percentile(latencies, 50), 2),
        "p99_ms": round(_percentile(latencies, 99), 2),
        "cache_budget_bytes": int(args.pool_memory_mb * 1024 * 1024 * args.cache_fraction),
    }
    time.sleep(3)  # the local data plane forwards EMF to CloudWatch as logs arrive
    cloudwatch = boto3.client("cloudwatch", endpoint_url=settings.endpoint_url, region_name=settings.region)
    totals = {}
    for metric in ("PoolCacheHits", "PoolCacheMisses", "PoolEvictions"):
        points = cloudwatch.get_metric_statistics(
            Namespace=contract.METRICS_NAMESPACE,
            MetricName=metric,
            Dimensions=[
                {"Name": "model", "Value": "(pool)"},
                {"Name": "service", "Value": contract.METRICS_SERVICE},
            ],
            StartTime=since,
            EndTime=datetime.now(UTC) + timedelta(seconds=60),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        totals[metric] = int(sum(p["Sum"] for p in points))
    result["cache"] = totals
    hits, misses = totals["PoolCacheHits"], totals["PoolCacheMisses"]
    result["hit_rate"] = round(hits / (hits + misses), 3) if hits + misses else None
    result["environments"] = platform.server.plane.environment_counts()
    return result


def markdown(report: dict[str, Any], command: str) -> str:
    """The report as reports/pool_scale.md."""
    z, r = report["zipf"], report
    cache = z["cache"]
    first, after = r["first_request_ms"], r["next_request_ms"]
    rows = [
        (
            "models registered",
            f"{r['models_in_registry']:,} ({r['models']:,} bulk + {r['distinct']} compiled)",
        ),
        (
            "`register --optimize` (compile, validate, upload), per model",
            f"{r['register_optimize_s_per_model']} s",
        ),
        (
            "bulk registration (register + attach ONNX), 4 writers",
            f"{r['bulk_register_models_per_s']} models/s ({r['bulk_register_s']} s)",
        ),
        ("`list_models()` (every page of the catalog index)", f"{r['list_all_models_s']} s"),
        ("first page of 100", f"{r['first_page_of_100_ms']} ms"),
        ("`modelctl models` (first page of 100; a new process)", f"{r['modelctl_models_s']} s"),
        (
            "`modelctl models --all --json` (a new process)",
            f"{r['modelctl_models_all_s']} s ({r['modelctl_models_all_listed']:,} models)",
        ),
        (
            "`GET /models`, all pages of 1,000 through the pool",
            f"{r['get_models_all_pages_s']} s ({r['get_models_pages']} pages)",
        ),
        (
            "sample called through the platform, compared with `model.predict`",
            f"{r['sample_called']} models, {r['sample_wrong']} wrong",
        ),
        (
            "first request for a model not loaded (warm environment), p50 / p99",
            f"{first['p50']} / {first['p99']} ms",
        ),
        ("the next request for it, p50 / p99", f"{after['p50']} / {after['p99']} ms"),
        (
            f"Zipf load: {z['requests']:,} requests over {z['models']:,} models (s = {z['s']}), 4 clients",
            f"{z['distinct_models_called']} distinct models, {z['failed']} failed, "
            f"p50 {z['p50_ms']} ms, p99 {z['p99_ms']} ms",
        ),
        (
            "cache per environment",
            f"{z['cache_budget_bytes']:,} bytes (ONNX forests of {min(r['onnx_bytes']):,}"
            f"-{max(r['onnx_bytes']):,} bytes)",
        ),
        (
            "cache under the Zipf load (all environments)",
            f"hit rate {z['hit_rate']}: {cache['PoolCacheHits']} hits, {cache['PoolCacheMisses']} misses, "
            f"{cache['PoolEvictions']} evictions",
        ),
        ("pool environments (busy, idle) after the load", str(z["environments"].get("mlp--pool"))),
    ]
    lines = [
        "# The pooled tier at scale (local platform)",
        "",
        f"Written by `python -m tooling.pool_bench {command}`; one run on this machine (2 cores).",
        "",
        "| what | measured |",
        "|---|---|",
        *[f"| {label} | {value} |" for label, value in rows],
        "",
        "Bulk registration attaches each distinct model's ONNX form, compiled once (see the module",
        "docstring); the per-model cost of a full `register --optimize` is the second row.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000, help="models to register (default 1000)")
    parser.add_argument("--distinct", type=int, default=10, help="distinct trained models (default 10)")
    parser.add_argument("--sample", type=int, default=200, help="models called and checked (default 200)")
    parser.add_argument("--cold-probes", type=int, default=50, help="first-request probes (default 50)")
    parser.add_argument("--zipf-models", type=int, default=1000, help="models under the Zipf load")
    parser.add_argument("--zipf-s", type=float, default=1.1, help="Zipf exponent (default 1.1)")
    parser.add_argument("--requests", type=int, default=3000, help="Zipf requests (default 3000)")
    parser.add_argument("--pool-memory-mb", type=int, default=512)
    parser.add_argument("--cache-fraction", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bench" / "pool.json")
    parser.add_argument("--markdown", type=Path, help="also write the report as Markdown here")
    parser.add_argument(
        "--from-json", type=Path, help="write --markdown from an earlier run's JSON; run nothing"
    )
    args = parser.parse_args(argv)
    args.zipf_models = min(args.zipf_models, args.models)
    given = list(argv if argv is not None else sys.argv[1:])
    for option in ("--from-json", "--markdown", "--out"):  # where the report goes is not how it was run
        while option in given:
            index = given.index(option)
            del given[index : index + 2]
    command = " ".join(given)
    if args.from_json:
        report = json.loads(args.from_json.read_text())
        command = report.get("command", command)
    else:
        report = run(args)
        report["command"] = command
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))
    if args.markdown:
        args.markdown.write_text(markdown(report, command))
    else:
        print(json.dumps(report, indent=2, default=str))
    return 0 if report["sample_wrong"] == 0 and report["zipf"]["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
