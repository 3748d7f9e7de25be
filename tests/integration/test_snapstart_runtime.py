"""SnapStart in the local runtime: a snapshot runs init and the before-snapshot hooks once; each cold
start is a fork of it that runs the after-restore hooks and serves without running init again. Every
process runs awslambdaric, Lambda's runtime interface client, against its own Runtime API."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_platform.runtime import (
    ExecutionEnvironment,
    FunctionPool,
    RuntimeUnavailable,
    Snapshot,
    VersionSpec,
    interpreter_for,
)
from tests.helpers import require_interpreter
from tooling.packaging import DEFAULT_RUNTIME, REPO_ROOT, install_layer, install_runtime

pytestmark = pytest.mark.integration

FUNCTION = textwrap.dedent(
    """
    import os, sys, time
    from snapshot_restore_py import register_after_restore, register_before_snapshot

    INIT_PID = os.getpid()
    STATE = {"init_runs": 1, "snapshotted": False, "restored_pid": None, "python": sys.version_info[:2]}
    time.sleep(float(os.environ.get("INIT_SLEEP_S", "0")))  # a slow init, like a model load
    # Walking sys.modules, as pickle.whichmodule does while a model loads, must not load the runtime
    # client in the snapshot (its restores would then ask the snapshot's Runtime API for work).
    for module in list(sys.modules.values()):
        getattr(module, "whichmodule_probe", None)

    @register_before_snapshot
    def _snapshot():
        if os.environ.get("FAIL_SNAPSHOT"):
            raise RuntimeError("model not loaded: refusing to snapshot")
        STATE["snapshotted"] = True

    @register_after_restore
    def _restore():
        STATE["restored_pid"] = os.getpid()
        print("restored", os.getpid(), flush=True)

    def handler(event, context):
        return {**STATE, "python": list(STATE["python"]), "init_pid": INIT_PID, "pid": os.getpid(),
                "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
    """
)


def _runtime_paths(runtime: str) -> list[Path]:
    """boto3 and awslambdaric as the ``runtime`` provides them (awslambdaric has a C extension)."""
    return [install_runtime(REPO_ROOT / "build", runtime, log=lambda m: None) / "python"]


@pytest.fixture(scope="module")
def runtime_paths() -> list[Path]:
    return _runtime_paths(DEFAULT_RUNTIME)


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(FUNCTION)
    return tmp_path


def _spec(code_dir: Path, runtime: str = DEFAULT_RUNTIME, **environment: str) -> VersionSpec:
    return VersionSpec(
        function_name="snap",
        version="1",
        handler="app.handler",
        timeout_s=30,
        memory_mb=128,
        environment=environment,
        code_dir=code_dir,
        layer_dirs=(),
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:snap:1",
        runtime=runtime,
        snap_start=True,
    )


def _context(n: int) -> dict:
    return {
        "function_name": "snap",
        "function_version": "1",
        "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:snap:1",
        "memory_limit_in_mb": 128,
        "aws_request_id": f"req-{n}",
        "log_group_name": "/aws/lambda/snap",
        "log_stream_name": "s",
    }


@pytest.fixture
def logs() -> Iterator[list[tuple[str, str]]]:
    lines: list[tuple[str, str]] = []
    yield lines


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_restores_fork_the_snapshot_and_skip_init(code_dir, logs, runtime: str) -> None:
    require_interpreter(runtime)
    runtime_paths = _runtime_paths(runtime)
    spec = _spec(code_dir, runtime, INIT_SLEEP_S="1.0")
    sink = lambda group, stream, line: logs.append((stream, line))  # noqa: E731
    pool = FunctionPool("snap")
    taken: list[Snapshot] = []

    def take(s: VersionSpec) -> Snapshot:
        snapshot = Snapshot(s, dict(os.environ), runtime_paths, sink)
        assert snapshot.wait_ready() is None
        taken.append(snapshot)
        return snapshot

    try:
        answers = []
        for n in range(3):
            environment = pool.snapshot(spec, take).restore()
            assert environment.wait_ready() is None
            outcome = environment.invoke({"n": n}, _context(n), 30)
            assert outcome.kind == "result", outcome.error
            answers.append(outcome.result)
            environment.stop()
        assert len(taken) == 1  # one snapshot, three restores
        snapshot_pid = taken[0].pid
        assert taken[0].init_ms is not None and taken[0].init_ms >= 1000  # init (1 s) ran in the snapshot
        for answer in answers:
            assert answer["init_pid"] == snapshot_pid != answer["pid"]  # memory from the snapshot's init
            assert answer["snapshotted"] is True and answer["restored_pid"] == answer["pid"]
            assert answer["init_type"] == "snap-start"
            assert answer["python"] == [int(x) for x in runtime.removeprefix("python").split(".")]
        assert len({a["pid"] for a in answers}) == 3
        assert any(line.startswith("restored ") for _, line in logs)  # restored logs reach the sink
    finally:
        pool.stop_all()
    assert not any(_alive(pid) for pid in [snapshot_pid, *(a["pid"] for a in answers)])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_failing_before_snapshot_hook_fails_the_snapshot(code_dir, runtime_paths) -> None:
    snapshot = Snapshot(_spec(code_dir, FAIL_SNAPSHOT="1"), dict(os.environ), runtime_paths, lambda *a: None)
    failed = snapshot.wait_ready()
    assert failed is not None and failed.kind == "init_error"
    assert "refusing to snapshot" in failed.error["errorMessage"]
    assert not snapshot.alive


def test_a_plain_environment_runs_no_snapshot_hooks(code_dir, runtime_paths) -> None:
    spec = _spec(code_dir)
    environment = ExecutionEnvironment(spec, dict(os.environ), runtime_paths, lambda *a: None)
    try:
        assert environment.wait_ready() is None
        answer = environment.invoke({}, _context(0), 30).result
        assert answer["snapshotted"] is False and answer["restored_pid"] is None
        assert answer["init_pid"] == answer["pid"]
    finally:
        environment.stop()


def test_an_unknown_runtime_is_refused_with_a_clear_message() -> None:
    with pytest.raises(RuntimeUnavailable, match=r"python3\.99"):
        interpreter_for("python3.99")


XGBOOST_FUNCTION = textwrap.dedent(
    """
    import numpy as np
    import xgboost as xgb

    # Training runs OpenMP parallel regions, so init leaves an OpenMP thread pool behind (when allowed).
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    MODEL = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, label=y), num_boost_round=5)

    def handler(event, context):
        return {"prediction": float(MODEL.inplace_predict(np.asarray([event["row"]]))[0])}
    """
)


def test_a_restore_of_an_xgboost_init_serves(tmp_path: Path, runtime_paths) -> None:
    """fork() keeps only one thread: snapshots run with one OpenMP thread, else the restore would hang.
    The function runs on the real XGBoost layer the platform deploys, and predicts what the same model
    trained here predicts."""
    import numpy as np
    import xgboost as xgb

    layer = install_layer("xgboost", REPO_ROOT / "build" / "lambda", log=lambda m: None)
    (tmp_path / "app.py").write_text(XGBOOST_FUNCTION)
    spec = VersionSpec(**{**vars(_spec(tmp_path)), "layer_dirs": (layer,)})
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    model = xgb.train({"max_depth": 3, "nthread": 1}, xgb.DMatrix(X, label=y), num_boost_round=5)
    row = [0.1, 0.2, 0.3, 0.4, 0.5]
    expected = float(model.inplace_predict(np.asarray([row]))[0])
    snapshot = Snapshot(spec, dict(os.environ), runtime_paths, lambda *a: None)
    try:
        assert snapshot.wait_ready() is None
        for n in range(2):
            environment = snapshot.restore()
            assert environment.wait_ready() is None
            outcome = environment.invoke({"row": row}, _context(n), 20)
            environment.stop()
            assert outcome.kind == "result", outcome.error
            assert outcome.result["prediction"] == pytest.approx(expected, rel=1e-6)
    finally:
        snapshot.stop()
