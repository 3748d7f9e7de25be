"""`make bench`, second half: cold starts, the local data plane under load, package sizes, and the report.

Reads the handler-overhead results pytest-benchmark wrote (build/bench/handler.json), measures the
rest, and writes reports/performance_report.md with PNG plots. Every comparison is a ratio of two
things measured in the same run on the same machine.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from examples.models import train_all
from local_platform.emulator import DUMMY_CREDENTIALS, Emulator, create_registry
from model_registry.core import contract
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from tooling.packaging import LAMBDA_UNZIPPED_LIMIT, REPO_ROOT, build_all

OUT = REPO_ROOT / "reports"
BENCH = REPO_ROOT / "build" / "bench"
COLD_RUNS = 5

HANDLER_COLD = r"""
import json, os, sys, time
t0 = time.perf_counter()
import boto3
t_boto = time.perf_counter()
import numpy
t_numpy = time.perf_counter()
import functions.handler as h
t_init = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])
from local_platform.events import LambdaContext
response = h.lambda_handler(event, LambdaContext("f", "1", "arn:aws:lambda:us-east-1:1:function:f", 1024, 30))
t_first = time.perf_counter()
assert response["statusCode"] == 200, response
timings = h.SERVER.pinned.timings
sys.stderr.write(json.dumps({
    "boto3": (t_boto - t0) * 1000, "numpy": (t_numpy - t_boto) * 1000,
    "init_total": (t_init - t0) * 1000, "registry": timings.registry_ms, "fetch": timings.fetch_ms,
    "verify": timings.verify_ms, "deserialize": timings.load_ms, "first_request": (t_first - t_init) * 1000,
}) + "\n")
"""

BARE_COLD = r"""
import gc, json, os, sys, time
t0 = time.perf_counter()
if os.environ.get("BENCH_GC_PAUSED"):  # like for like: the handler pauses the collector during init
    gc.disable()
path = os.environ["BENCH_ARTIFACT"]
import numpy as np
if path.endswith(".onnx"):
    import onnxruntime as ort
    t_import = time.perf_counter()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    class model:
        predict = staticmethod(lambda x: session.run(None, {feed: x.astype(np.float32)}))
elif path.endswith(".skops"):
    import skops.io as sio
    t_import = time.perf_counter()
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
else:
    import xgboost as xgb
    t_import = time.perf_counter()
    model = xgb.XGBClassifier()
    model.load_model(path)
t_load = time.perf_counter()
model.predict(np.asarray(json.loads(os.environ["BENCH_ROWS"])))
t_first = time.perf_counter()
sys.stderr.write(json.dumps({"imports": (t_import - t0) * 1000, "load": (t_load - t_import) * 1000,
                             "first_request": (t_first - t_load) * 1000,
                             "total": (t_first - t0) * 1000}) + "\n")
"""


def _run_json(code: str, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stderr.strip().splitlines()[-1])


def _cold_settings(emulator_url: str) -> Settings:
    return Settings(table_name="cold-registry", bucket_name="cold-artifacts", endpoint_url=emulator_url)


def _predict_event(name: str, rows: list[list[float]]) -> dict[str, Any]:
    from local_platform.events import build_event

    return build_event(
        method="POST",
        path=f"/models/{name}/predict",
        route_key=f"ANY /models/{name}/{{proxy+}}",
        path_parameters={"proxy": "predict"},
        headers={"content-type": "application/json"},
        body=json.dumps({"instances": rows}).encode(),
    )


def cold_starts(emulator_url: str, examples_dir: Path) -> dict[str, Any]:
    """Fresh-process cold start of the handler vs bare import + load + first predict, per model."""
    settings = _cold_settings(emulator_url)
    create_registry(settings)
    service = RegistryService.from_settings(settings)
    examples = train_all(examples_dir)
    out: dict[str, Any] = {}
    variants = []
    for example in examples:
        service.register(example.name, example.artifact, feature_names=example.feature_names, progress=False)
        variants.append((example.name, example, example.artifact))
        if example.serve_optimized:
            record = service.register(
                f"{example.name}-onnx", example.artifact, optimize_rows=example.X_test, progress=False
            )
            assert record.optimized is not None
            onnx_path = examples_dir / f"{example.name}.onnx"
            onnx_path.write_bytes(service.artifacts.download(record.optimized.s3_key))
            variants.append((f"{example.name}-onnx", example, onnx_path))
    for name, example, artifact in variants:
        rows = example.X_test[:1].tolist()
        event = _predict_event(name, rows)
        base = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "PYTHONPATH": str(REPO_ROOT),
        }
        handler_env = {
            **base,
            contract.ENV_TABLE: settings.table_name,
            contract.ENV_BUCKET: settings.bucket_name,
            contract.ENV_ENDPOINT_URL: emulator_url,
            contract.ENV_REGION: "us-east-1",
            contract.ENV_MODEL_NAME: name,
            contract.ENV_MODEL_VERSION: "1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "BENCH_EVENT": json.dumps(event),
        }
        bare_env = {**base, "BENCH_ARTIFACT": str(artifact), "BENCH_ROWS": json.dumps(rows)}
        handler_runs = [_run_json(HANDLER_COLD, handler_env) for _ in range(COLD_RUNS)]
        bare_runs = [_run_json(BARE_COLD, bare_env) for _ in range(COLD_RUNS)]
        paused_runs = [_run_json(BARE_COLD, {**bare_env, "BENCH_GC_PAUSED": "1"}) for _ in range(COLD_RUNS)]
        median = {k: statistics.median(r[k] for r in handler_runs) for k in handler_runs[0]}
        bare = {k: statistics.median(r[k] for r in bare_runs) for k in bare_runs[0]}
        paused = {k: statistics.median(r[k] for r in paused_runs) for k in paused_runs[0]}
        median["total"] = median["init_total"] + median["first_request"]
        out[name] = {
            "rows": rows,
            "handler": median,
            "bare": bare,
            "bare_gc_paused": paused,
            "ratio": median["total"] / bare["total"],
            "ratio_gc_paused": median["total"] / paused["total"],
        }
        print(
            f"cold start {name}: handler {median['total']:.0f} ms vs bare {bare['total']:.0f} ms "
            f"(x{out[name]['ratio']:.2f}), bare with GC paused {paused['total']:.0f} ms "
            f"(x{out[name]['ratio_gc_paused']:.2f})",
            flush=True,
        )
    return out


def _discard(group: str, stream: str, line: str) -> None:
    """A log sink for benchmark environments: their logs are not read."""


def _first_start(environment: Any, spec: Any, event: dict[str, Any]) -> float:
    """Milliseconds from starting ``environment`` to the end of its first request; then stop it."""
    assert environment.wait_ready() is None, f"{spec.function_name} did not start"
    started = time.perf_counter()
    context = {
        "function_name": spec.function_name,
        "function_version": "1",
        "invoked_function_arn": spec.function_arn,
        "memory_limit_in_mb": 1024,
        "aws_request_id": "bench",
        "log_group_name": "bench",
        "log_stream_name": "bench",
        "remaining_ms": 30_000,
    }
    outcome = environment.invoke(event, context, 30)
    assert outcome.kind == "result" and outcome.result["statusCode"] == 200, outcome
    total = (environment.init_ms or 0.0) + (time.perf_counter() - started) * 1000
    environment.stop()
    return total


def snapstart_restores(emulator_url: str, cold: dict[str, Any]) -> dict[str, Any]:
    """Cold starts in the local data plane's execution environments, by init and by SnapStart restore.

    Each model's function (build/lambda: the function zip's code, its framework layer) starts COLD_RUNS
    times by init, then once as a snapshot (init and the before-snapshot hook) and COLD_RUNS times as
    restores of it; every start is timed to the end of its first request.
    """
    import zipfile

    from local_platform.runtime import ExecutionEnvironment, Snapshot, VersionSpec
    from tooling.packaging import DEFAULT_RUNTIME, install_runtime

    settings = _cold_settings(emulator_url)
    service = RegistryService.from_settings(settings)
    build = REPO_ROOT / "build" / "lambda"
    code_dir = BENCH / "function"
    if not code_dir.exists():
        zipfile.ZipFile(build / "function.zip").extractall(code_dir)
    runtime_paths = [install_runtime(build, log=lambda m: None) / "python"]
    base_env = {
        **DUMMY_CREDENTIALS,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    out: dict[str, Any] = {}
    for name, row in cold.items():
        framework = "onnx" if name.endswith("-onnx") else service.store.get_version(name, 1).framework
        spec = VersionSpec(
            function_name=f"bench-{name}",
            version="1",
            handler="functions.handler.lambda_handler",
            timeout_s=30,
            memory_mb=1024,
            environment={
                contract.ENV_TABLE: settings.table_name,
                contract.ENV_BUCKET: settings.bucket_name,
                contract.ENV_ENDPOINT_URL: emulator_url,
                contract.ENV_REGION: settings.region,
                contract.ENV_MODEL_NAME: name,
                contract.ENV_MODEL_VERSION: "1",
            },
            code_dir=code_dir,
            layer_dirs=(build / f"layer-{framework}",),
            function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:bench-{name}:1",
            runtime=DEFAULT_RUNTIME,
            snap_start=True,
        )
        event = _predict_event(name, row["rows"])

        inits = [
            _first_start(ExecutionEnvironment(spec, base_env, runtime_paths, _discard), spec, event)
            for _ in range(COLD_RUNS)
        ]
        snapshot = Snapshot(spec, base_env, runtime_paths, _discard)
        assert snapshot.wait_ready() is None, f"snapshot of {name} failed"
        try:
            restores = [_first_start(snapshot.restore(), spec, event) for _ in range(COLD_RUNS)]
        finally:
            snapshot.stop()
        out[name] = {
            "init_ms": statistics.median(inits),
            "restore_ms": statistics.median(restores),
            "snapshot_ms": snapshot.init_ms,
        }
        print(
            f"snapstart {name}: cold start by init {out[name]['init_ms']:.0f} ms, by restore "
            f"{out[name]['restore_ms']:.1f} ms (snapshot taken in {snapshot.init_ms:.0f} ms)",
            flush=True,
        )
    return out


def data_plane_load(seconds: float = 6.0) -> dict[str, Any]:
    """p50/p99 and requests per second through the local platform at 1, 4 and 16 clients
    (``python -m tooling.bench_report --data-plane`` runs only this)."""
    from local_platform.launcher import local_platform, register_and_roll_out_examples
    from model_registry.core import aws

    state = BENCH / "platform"
    var_file = BENCH / "bench.tfvars.json"
    var_file.write_text(
        json.dumps(
            {
                "models": {
                    "iris": {"framework": "sklearn", "reserved_concurrency": 16},
                    "breast-cancer": {"framework": "xgboost"},
                    "diabetes": {"framework": "onnx"},
                }
            }
        )
    )
    results: dict[str, Any] = {}
    with local_platform(state, var_files=[var_file], say=lambda m: print(f"[platform] {m}", flush=True)) as p:
        with aws.environment(p.env):
            register_and_roll_out_examples(Settings.from_env(), state, lambda m: None)
        body = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
        url = f"{p.url}/models/iris/predict"

        def client(deadline: float) -> list[tuple[float, int]]:
            out = []
            with requests.Session() as session:
                while time.monotonic() < deadline:
                    start = time.perf_counter()
                    status = session.post(url, json=body, timeout=60).status_code
                    out.append(((time.perf_counter() - start) * 1000, status))
            return out

        for clients in (1, 4, 16):
            client(time.monotonic() + 2 + clients * 0.5)  # warm: start the environments first
            with ThreadPoolExecutor(clients) as pool:
                warm = [pool.submit(client, time.monotonic() + 3) for _ in range(clients)]
                [f.result() for f in warm]
                deadline = time.monotonic() + seconds
                runs = [pool.submit(client, deadline) for _ in range(clients)]
                samples = [s for f in runs for s in f.result()]
            latencies = sorted(s[0] for s in samples)
            errors = sum(1 for s in samples if s[1] != 200)
            results[str(clients)] = {
                "requests": len(samples),
                "errors": errors,
                "rps": len(samples) / seconds,
                "p50_ms": statistics.median(latencies),
                "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
            }
            print(f"data plane {clients:2d} clients: {results[str(clients)]}", flush=True)
    return results


def _optimized_rows(handler_json: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Optimized serving (`--optimize`): the diabetes random forest as ONNX",
        "",
        "Median per call on the same rows: scikit-learn's `predict`, the validated ONNX form run by "
        "onnxruntime, and the handler serving the ONNX form (event in, response out).",
        "",
        "| batch | native µs | ONNX µs | speed-up | handler (ONNX) µs | handler overhead µs |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in (1, 10, 100):
        native = _median_us(handler_json, "diabetes-onnx", batch, "native")
        onnx = _median_us(handler_json, "diabetes-onnx", batch, "onnx")
        handler = _median_us(handler_json, "diabetes-onnx", batch, "handler-onnx")
        lines.append(
            f"| {batch} | {native:.0f} | {onnx:.1f} | x{native / onnx:.0f} | {handler:.0f} "
            f"| {handler - onnx:.0f} |"
        )
    return lines


def _median_us(handler_json: dict[str, Any], model: str, batch: int, path: str) -> float:
    for bench in handler_json["benchmarks"]:
        info = bench["extra_info"]
        if (info["model"], info["batch"], info["path"]) == (model, batch, path):
            return float(bench["stats"]["median"]) * 1e6
    raise KeyError((model, batch, path))


def package_sizes() -> dict[str, float]:
    built = build_all(REPO_ROOT / "build" / "lambda", log=lambda m: None)
    sizes = {"function.zip": built.function.unzipped_mb}
    sizes.update({f"layer-{name}.zip": layer.unzipped_mb for name, layer in built.layers.items()})
    return sizes


def plots(handler_json: dict[str, Any], cold: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, model in zip(axes, ("iris", "breast-cancer", "diabetes"), strict=True):
        data, labels = [], []
        for batch in (1, 10, 100):
            for path in ("bare", "handler"):
                bench = next(
                    b
                    for b in handler_json["benchmarks"]
                    if (b["extra_info"]["model"], b["extra_info"]["batch"], b["extra_info"]["path"])
                    == (model, batch, path)
                )
                data.append(
                    [x * 1e6 for x in bench["stats"].get("data", [])] or [bench["stats"]["median"] * 1e6]
                )
                labels.append(f"{path}\nb={batch}")
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax.set_yscale("log")
        ax.set_title(model)
        ax.set_ylabel("µs per call")
    fig.suptitle("Latency per call: bare model.predict vs the handler (event in, response out)")
    fig.tight_layout()
    fig.savefig(OUT / "latency_distribution.png", dpi=110)
    names.append("latency_distribution.png")

    fig, ax = plt.subplots(figsize=(9, 4))
    parts = ["boto3", "numpy", "registry", "fetch", "verify", "deserialize", "first_request"]
    models = list(cold)
    left = [0.0] * len(models)
    for part in parts:
        values = [cold[m]["handler"][part] for m in models]
        ax.barh([f"{m} handler" for m in models], values, left=left, label=part)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.barh(
        [f"{m} bare" for m in models],
        [cold[m]["bare"]["total"] for m in models],
        color="grey",
        label="bare import+load+predict",
    )
    ax.set_xlabel("ms (median of fresh processes)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Cold start breakdown (the rest of the handler bar's length is other imports)")
    fig.tight_layout()
    fig.savefig(OUT / "cold_start_breakdown.png", dpi=110)
    names.append("cold_start_breakdown.png")
    plt.close("all")
    return names


def write_report(
    handler_json: dict[str, Any],
    cold: dict[str, Any],
    snap: dict[str, Any],
    plane: dict[str, Any],
    sizes: dict[str, float],
    images: list[str],
) -> Path:
    lines = [
        "# Performance report",
        "",
        f"Generated by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}.",
        "Each comparison is a ratio of two measurements taken in the same run.",
        "",
        "## Handler overhead (warm, in process)",
        "",
        "Median per call; *bare* is the trained model's own `predict` on the same rows, *handler* is the "
        "Lambda handler from payload-2.0 event to response (parse, validate, predict, encode, log, EMF).",
        "",
        "| model | batch | bare µs | handler µs | overhead µs | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model in ("iris", "breast-cancer", "diabetes"):
        for batch in (1, 10, 100):
            bare = _median_us(handler_json, model, batch, "bare")
            handler = _median_us(handler_json, model, batch, "handler")
            lines.append(
                f"| {model} | {batch} | {bare:.0f} | {handler:.0f} | {handler - bare:.0f} | "
                f"{handler / bare:.2f} |"
            )
    paired_path = BENCH / "paired.json"
    if paired_path.exists():
        paired = json.loads(paired_path.read_text())
        lines += [
            "",
            "Batch 1 again, with the bare call and the handler call alternated in one loop "
            f"({next(iter(paired.values()))['rounds']} pairs), so machine noise hits both alike. *Overhead* "
            "is the median of the per-pair differences; *handler's own work* is the handler timed with the "
            "model's predict answering from a cache. The rest of the overhead is the model's own predict "
            "taking longer inside a request than back to back, for a cause not pinned down:",
            "",
            "| model | bare µs | handler µs | overhead µs | handler's own work µs |",
            "|---|---:|---:|---:|---:|",
        ]
        for model, row in paired.items():
            lines.append(
                f"| {model} | {row['bare_us']:.1f} | {row['handler_us']:.1f} | "
                f"{row.get('overhead_us', row['handler_us'] - row['bare_us']):.1f} | "
                f"{row.get('handler_own_us', float('nan')):.1f} |"
            )
    lines += _optimized_rows(handler_json)
    lines += [
        "",
        f"## Cold start (fresh processes, median of {COLD_RUNS})",
        "",
        "| model | boto3 ms | numpy ms | registry ms | fetch ms | verify ms | deserialize ms "
        "| first request ms | handler total ms | bare total ms | ratio | bare, GC paused ms | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, row in cold.items():
        h = row["handler"]
        lines.append(
            f"| {model} | {h['boto3']:.0f} | {h['numpy']:.0f} | {h['registry']:.1f} | {h['fetch']:.1f} | "
            f"{h['verify']:.2f} | {h['deserialize']:.0f} | {h['first_request']:.1f} | {h['total']:.0f} | "
            f"{row['bare']['total']:.0f} | {row['ratio']:.2f} | {row['bare_gc_paused']['total']:.0f} | "
            f"{row['ratio_gc_paused']:.2f} |"
        )
    lines += [
        "",
        "The handler pauses the garbage collector during init and freezes what init allocated "
        "(functions/handler.py). *Bare* is a plain `import` + load + first predict; *bare, GC paused* "
        "does the same with the collector paused, so its ratio is the handler's own cost, like for like.",
    ]
    lines += [
        "",
        "## SnapStart, as the local data plane emulates it",
        "",
        f"Median of {COLD_RUNS} starts of each model's function in the data plane's execution environments "
        "(function zip and framework layer from build/lambda), each timed to the end of its first request: "
        "by init (a new worker process: interpreter, imports, registry lookup, fetch, load), and by restore "
        "of the version's snapshot (init and the handler's before-snapshot hook, taken once). Locally a "
        "restore is a `fork()` of the snapshot process plus the after-restore hook; Lambda restores a "
        "microVM snapshot, which takes longer, so these restore times show that the model is in the "
        "snapshot and that a restore skips init, not what Lambda will measure.",
        "",
        "| model | cold start by init ms | by restore ms | snapshot taken in ms |",
        "|---|---:|---:|---:|",
    ]
    for model, row in snap.items():
        lines.append(
            f"| {model} | {row['init_ms']:.0f} | {row['restore_ms']:.1f} | {row['snapshot_ms']:.0f} |"
        )
    lines += [
        "",
        "## Local data plane (iris, batch 1, HTTP keep-alive clients)",
        "",
        "| clients | requests | errors | req/s | p50 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for clients in ("1", "4", "16"):
        r = plane[clients]
        lines.append(
            f"| {clients} | {r['requests']} | {r['errors']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} |"
        )
    lines += [
        "",
        f"In-process handler median (iris, batch 1): {plane['in_process_handler_ms']:.3f} ms; data plane "
        f"p50 at 1 client is x{plane['overhead_ratio']:.1f} of it (HTTP, route and alias resolution, the "
        "event, a process hop to the execution environment and back).",
        "",
        "## Package sizes (unzipped)",
        "",
        "| package | MB | with function, share of 250 MB |",
        "|---|---:|---:|",
    ]
    for name, mb in sizes.items():
        total = mb + (sizes["function.zip"] if name != "function.zip" else 0)
        lines.append(f"| {name} | {mb:.1f} | {total / (LAMBDA_UNZIPPED_LIMIT / 2**20):.0%} |")
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images] + [""]
    path = OUT / "performance_report.md"
    path.write_text("\n".join(lines))
    return path


def main() -> int:
    os.environ.update({**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    OUT.mkdir(exist_ok=True)
    BENCH.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["--data-plane"]:
        print(json.dumps(data_plane_load()))
        return 0
    handler_json = json.loads((BENCH / "handler.json").read_text())
    with Emulator() as emulator:
        cold = cold_starts(emulator.url, BENCH / "examples")
        snap = snapstart_restores(emulator.url, cold)
    plane = data_plane_load()
    plane["in_process_handler_ms"] = _median_us(handler_json, "iris", 1, "handler") / 1000
    plane["overhead_ratio"] = plane["1"]["p50_ms"] / plane["in_process_handler_ms"]
    sizes = package_sizes()
    images = plots(handler_json, cold)
    print(f"wrote {write_report(handler_json, cold, snap, plane, sizes, images)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
