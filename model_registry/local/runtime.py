"""Local Lambda execution environments: one worker process per environment, one request at a time.

Environments are created up to the function's concurrency limit, reused when idle, and replaced
when they crash or time out, like Lambda's.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_registry.local.worker import receive, send
from model_registry.packaging import DEFAULT_RUNTIME

WORKER = Path(__file__).with_name("worker.py")
INIT_TIMEOUT_S = (
    60.0  # Lambda allows 10 s of init outside provisioned concurrency; model loads here are slower
)
LogSink = Callable[[str, str, str], None]  # (log group, log stream, line)


@dataclass(frozen=True)
class VersionSpec:
    """What Lambda knows about one function version, as read from the emulator."""

    function_name: str
    version: str
    handler: str
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    function_arn: str
    runtime: str = DEFAULT_RUNTIME
    snap_start: bool = False  # SnapStart is on for this (published) version: restore, don't init

    @property
    def key(self) -> tuple[str, str]:
        return self.function_name, self.version


class RuntimeUnavailable(RuntimeError):
    """No local interpreter for a function's runtime."""

    @property
    def error(self) -> dict[str, Any]:
        return {"errorType": "Runtime.InvalidRuntime", "errorMessage": str(self)}


class SnapshotFailed(RuntimeError):
    """Init or a before-snapshot hook failed while taking a SnapStart snapshot."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(error.get("errorMessage", "snapshot failed"))
        self.error = {**error, "errorType": error.get("errorType", "Runtime.SnapshotError")}


@functools.cache
def interpreter_for(runtime: str) -> str:
    """The local Python interpreter for a Lambda ``runtime`` such as ``python3.12``.

    This interpreter when its version matches, else the first of ``python3.X`` on PATH and pyenv's
    ``3.X`` builds (newest first) that really runs as 3.X: pyenv's shims exist for versions that are
    not selected. The layers must be built for the same version (``make build LAMBDA_RUNTIME=``).
    """
    match = re.fullmatch(r"python(3)\.(\d+)", runtime)
    if match is None:
        raise RuntimeUnavailable(f"runtime {runtime!r} is not a Python runtime")
    wanted = (int(match.group(1)), int(match.group(2)))
    if sys.version_info[:2] == wanted:
        return sys.executable
    name = f"python{wanted[0]}.{wanted[1]}"
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    builds = sorted(
        pyenv_root.glob(f"versions/{wanted[0]}.{wanted[1]}.*/bin/{name}"),
        key=lambda p: [int(x) if x.isdigit() else -1 for x in p.parts[-3].split(".")],
        reverse=True,
    )
    for candidate in [shutil.which(name), *map(str, builds)]:
        if candidate and _runs_as(candidate, wanted):
            return candidate
    raise RuntimeUnavailable(
        f"runtime {runtime} needs a local {name} interpreter: put one on PATH (or install it with pyenv)"
    )


def _runs_as(interpreter: str, version: tuple[int, int]) -> bool:
    probe = subprocess.run(
        [interpreter, "-S", "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.split() == [str(v) for v in version]


@dataclass
class Outcome:
    """How one invocation ended."""

    kind: str  # result | error | timeout | crash | init_error | throttled
    result: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    init_ms: float | None = None
    version: str = ""


class ExecutionEnvironment:
    """One worker process running one function version."""

    _ids = itertools.count(1)

    def __init__(
        self,
        spec: VersionSpec,
        base_env: dict[str, str],
        runtime_paths: list[Path],
        sink: LogSink,
        *,
        snapshot: bool = False,
    ):
        self.spec = spec
        interpreter = interpreter_for(spec.runtime)
        self.id = uuid.uuid4().hex[:12]
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self.log_group = f"/aws/lambda/{spec.function_name}"
        self.log_stream = f"{day}/[{spec.version}]{self.id}"
        self._sink = sink
        parent, child = socket.socketpair()
        self._sock = parent
        paths = [spec.code_dir, *(d / "python" for d in spec.layer_dirs), *runtime_paths]
        env = {
            **base_env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "_LOCAL_LAMBDA_FD": str(child.fileno()),
            "_LOCAL_LAMBDA_PATH": os.pathsep.join(str(p) for p in paths),
        }
        if snapshot:
            env["_LOCAL_LAMBDA_SNAPSHOT"] = "1"
            env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
            # Restores are fork()s, which keep only the calling thread: an OpenMP pool started during
            # init (XGBoost starts one) would be missing in the restored process, whose first parallel
            # region would then hang. One OpenMP thread means no pool.
            env["OMP_NUM_THREADS"] = "1"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [interpreter, "-S", "-u", str(WORKER)],
            env=env,
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(spec.code_dir),
            start_new_session=True,
        )
        # No PR_SET_PDEATHSIG here: it fires when the *thread* that started the child ends (each HTTP
        # connection has its own). A worker exits by itself when its socket closes, so it cannot outlive us.
        child.close()
        assert self.process.stdout is not None
        self._log_source = self.process.stdout
        self._reader = threading.Thread(target=self._forward_logs, daemon=True)
        self._reader.start()
        self.init_ms: float | None = None
        self.idle_since = time.monotonic()
        self.ready = False
        self.provisioned = False  # kept initialised for its version's provisioned concurrency

    _FAILURE = {"errorType": "Runtime.InitError", "errorMessage": "init failed"}

    def _forward_logs(self) -> None:
        with self._log_source:
            for raw in self._log_source:
                self._sink(self.log_group, self.log_stream, raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_ready(self) -> Outcome | None:
        """Wait for init (or a restore) to finish; an Outcome on failure, None when ready."""
        self._sock.settimeout(INIT_TIMEOUT_S)
        try:
            message = receive(self._sock)
        except (TimeoutError, OSError):
            message = None
        if message is None or message.get("type") != "ready":
            self.stop()
            return Outcome("init_error", error=message or dict(self._FAILURE))
        self._on_ready(message)
        self.init_ms = (time.perf_counter() - self.started) * 1000  # as the caller waits, process start too
        self.ready = True
        return None

    def _on_ready(self, message: dict[str, Any]) -> None:
        """What the ready message tells beyond readiness (a restored environment: its pid)."""

    def invoke(self, event: dict[str, Any], context: dict[str, Any], timeout_s: float) -> Outcome:
        """Run one invocation; kill the environment if it overruns ``timeout_s`` or dies."""
        start = time.perf_counter()
        try:
            self._sock.settimeout(timeout_s)
            send(self._sock, {"event": event, "context": context})
            message = receive(self._sock)
        except TimeoutError:
            self.stop()
            return Outcome(
                "timeout",
                duration_ms=(time.perf_counter() - start) * 1000,
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {timeout_s:.2f} seconds",
                },
            )
        except OSError:
            message = None
        if message is None:
            code = self._exit_code()
            self.stop()
            return Outcome(
                "crash",
                duration_ms=(time.perf_counter() - start) * 1000,
                error={
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {context['aws_request_id']} Error: "
                    f"Runtime exited with error: exit status {code}",
                },
            )
        if message["type"] == "result":
            return Outcome("result", result=message["result"], duration_ms=message["duration_ms"])
        return Outcome("error", error=message, duration_ms=message.get("duration_ms", 0.0))

    def _exit_code(self) -> int | str:
        return self.process.wait(timeout=5) if self.process.poll() is None else self.process.returncode

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._sock.close()


class Snapshot(ExecutionEnvironment):
    """A SnapStart snapshot of one published version: a worker that ran init and the before-snapshot
    hooks, and forks a :class:`RestoredEnvironment` for each cold start instead of serving itself."""

    def __init__(self, spec: VersionSpec, base_env: dict[str, str], runtime_paths: list[Path], sink: LogSink):
        super().__init__(spec, base_env, runtime_paths, sink, snapshot=True)
        self.log_stream = self.log_stream.replace("]", "]snapshot-", 1)
        self._restore_lock = threading.Lock()

    def restore(self) -> RestoredEnvironment:
        """A new execution environment forked from this snapshot; call its ``wait_ready``."""
        return RestoredEnvironment(self)


class RestoredEnvironment(ExecutionEnvironment):
    """An execution environment forked from a :class:`Snapshot`; its process is the snapshot's child."""

    def __init__(self, snapshot: Snapshot):  # starts no process: the snapshot forks it
        self.spec = snapshot.spec
        self.id = uuid.uuid4().hex[:12]
        self.log_group = snapshot.log_group
        self.log_stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{self.spec.version}]{self.id}"
        self._sink = snapshot._sink
        self.started = time.perf_counter()
        self._sock, child = socket.socketpair()
        read_fd, write_fd = os.pipe()
        try:
            with snapshot._restore_lock:
                socket.send_fds(snapshot._sock, [b"r"], [child.fileno(), write_fd])
        except OSError as exc:  # the snapshot died since it was looked up
            self._sock.close()
            os.close(read_fd)
            raise SnapshotFailed(
                {"errorType": "Runtime.RestoreError", "errorMessage": f"snapshot unavailable: {exc}"}
            ) from exc
        finally:
            child.close()
            os.close(write_fd)
        self._log_source = os.fdopen(read_fd, "rb")
        self._pid: int | None = None
        self._reader = threading.Thread(target=self._forward_logs, daemon=True)
        self._reader.start()
        self.init_ms: float | None = None
        self.idle_since = time.monotonic()
        self.ready = False
        self.provisioned = False

    _FAILURE = {"errorType": "Runtime.RestoreError", "errorMessage": "restore failed"}

    def _on_ready(self, message: dict[str, Any]) -> None:
        self._pid = int(message["pid"])  # init_ms then covers the fork and the after-restore hooks

    def _exit_code(self) -> int | str:
        return "unknown (a restored environment is the snapshot's child)"

    @property
    def pid(self) -> int:
        """The process id, or 0 until the restored process has reported it."""
        return self._pid or 0

    @property
    def alive(self) -> bool:
        if self._pid is None:
            return False
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._pid, signal.SIGKILL)
            deadline = time.monotonic() + 5  # its parent (the snapshot) reaps it; wait until it is gone
            while self.alive and time.monotonic() < deadline:
                time.sleep(0.01)
        self._sock.close()


class FunctionPool:
    """The execution environments of one function, bounded by its concurrency limit."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._members: set[ExecutionEnvironment] = set()  # every environment started and not yet stopped
        self._busy = 0
        self._closed = False
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}  # version -> its SnapStart snapshot
        self._snapshot_lock = threading.Lock()  # one snapshot taken at a time; restores do not wait

    def snapshot(self, spec: VersionSpec, take: Callable[[VersionSpec], Snapshot]) -> Snapshot:
        """The live snapshot of ``spec``'s version, taken with ``take`` on first use (or if it died)."""
        with self._snapshot_lock:
            with self._lock:
                current = self._snapshots.get(spec.version)
                if self._closed:
                    raise RuntimeError(f"{self.function_name} is shutting down")
            if current is not None and current.alive:
                return current
            taken = take(spec)
            with self._lock:
                self._snapshots[spec.version] = taken
            return taken

    def _idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def acquire(
        self, spec: VersionSpec, limit: int, create: Callable[[VersionSpec], ExecutionEnvironment]
    ) -> tuple[ExecutionEnvironment | None, bool]:
        """An environment for ``spec`` (and whether it is new), or None when the function is at its limit."""
        evict: ExecutionEnvironment | None = None
        with self._lock:
            idle = self._idle.get(spec.version) or []
            while idle:
                environment = idle.pop()
                if environment.alive:
                    self._busy += 1
                    return environment, False
            if self._busy + self._idle_count() >= limit:
                # Reclaim an idle environment of another version (on-demand ones first), or throttle.
                evict = self._take_idle_for_eviction()
                if evict is None:
                    return None, False
            self._busy += 1
        if evict is not None:
            evict.stop()
            with self._lock:
                self._members.discard(evict)
        try:
            environment = create(spec)
            with self._lock:
                self._members.add(environment)
            return environment, True
        except BaseException:
            with self._lock:
                self._busy -= 1
            raise

    def release(self, environment: ExecutionEnvironment) -> None:
        with self._lock:
            self._busy -= 1
            environment.idle_since = time.monotonic()
            if environment.alive and environment.ready:
                self._idle.setdefault(environment.spec.version, []).append(environment)
            else:
                self._members.discard(environment)

    def discard(self, environment: ExecutionEnvironment) -> None:
        """Count an environment that failed to start as no longer busy."""
        with self._lock:
            self._busy -= 1
            self._members.discard(environment)

    def _take_idle_for_eviction(self) -> ExecutionEnvironment | None:
        """Remove and return an idle environment, on-demand before provisioned; None if none is idle."""
        candidates = [e for idle in self._idle.values() for e in idle]
        if not candidates:
            return None
        victim = min(candidates, key=lambda e: e.provisioned)
        self._idle[victim.spec.version].remove(victim)
        return victim

    def update_provisioned(self, wanted: dict[str, int]) -> dict[str, int]:
        """Mark environments as provisioned up to ``wanted`` (version -> count), adopting idle ones
        first; unmark the rest. Returns how many more each version needs."""
        with self._lock:
            counts: dict[str, int] = {}
            for environment in sorted(self._members, key=lambda e: not e.provisioned):
                version = environment.spec.version
                keep = counts.get(version, 0) < wanted.get(version, 0) and environment.ready
                idle = environment in self._idle.get(version, [])
                if keep and (environment.provisioned or idle):
                    environment.provisioned = True
                    counts[version] = counts.get(version, 0) + 1
                else:
                    environment.provisioned = False
            return {v: n - counts.get(v, 0) for v, n in wanted.items() if n > counts.get(v, 0)}

    def add_provisioned(self, environment: ExecutionEnvironment, limit: int) -> bool:
        """Add an initialised environment as provisioned, within ``limit``; False (and stopped) if not."""
        evict = None
        with self._lock:
            accepted = not self._closed
            if accepted and len(self._members) >= limit:
                evict = self._take_idle_for_eviction()
                if evict is None or evict.provisioned:
                    if evict is not None:
                        self._idle[evict.spec.version].append(evict)
                    evict, accepted = None, False
                else:
                    self._members.discard(evict)
            if accepted:
                environment.provisioned = True
                environment.idle_since = time.monotonic()
                self._members.add(environment)
                self._idle.setdefault(environment.spec.version, []).append(environment)
        if evict is not None:
            evict.stop()
        if not accepted:
            environment.stop()
        return accepted

    def provisioned_pids(self) -> dict[str, list[int]]:
        """Process ids of the provisioned environments, per version."""
        with self._lock:
            out: dict[str, list[int]] = {}
            for environment in self._members:
                if environment.provisioned and environment.pid:
                    out.setdefault(environment.spec.version, []).append(environment.pid)
            return out

    def reclaim_idle(self, idle_for_s: float) -> int:
        """Stop the idle environments unused for ``idle_for_s`` seconds (provisioned ones stay)."""
        cutoff = time.monotonic() - idle_for_s
        with self._lock:
            stale = [
                e
                for idle in self._idle.values()
                for e in idle
                if e.idle_since <= cutoff and not e.provisioned
            ]
            for idle in self._idle.values():
                idle[:] = [e for e in idle if e not in stale]
            self._members.difference_update(stale)
        for environment in stale:
            environment.stop()
        return len(stale)

    def snapshot_pids(self) -> dict[str, int]:
        """Process ids of the live snapshots, per version."""
        with self._lock:
            return {version: s.pid for version, s in self._snapshots.items() if s.alive}

    def pids(self) -> list[int]:
        """Process ids of every environment and snapshot of this function."""
        with self._lock:
            return [e.pid for e in [*self._members, *self._snapshots.values()] if e.pid]

    def stop_all(self) -> None:
        with self._lock:
            self._closed = True
            environments = [*self._members, *self._snapshots.values()]
            self._idle.clear()
            self._members.clear()
            self._snapshots.clear()
        for environment in environments:
            environment.stop()

    @property
    def sizes(self) -> tuple[int, int]:
        with self._lock:
            return self._busy, self._idle_count()
