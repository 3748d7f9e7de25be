"""Local Lambda execution environments: one process per environment, one request at a time.

Each environment's process runs the AWS Lambda runtime interface client (awslambdaric, see
bootstrap.py) against a Lambda Runtime API of its own (runtime_api.py): handler import, init errors,
events, responses and function errors go through Lambda's own protocol and client. Environments are
created up to the function's concurrency limit, reused when idle, and replaced when they crash or
time out, like Lambda's; init is held to Lambda's limits.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
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
from typing import Any, Literal

from local_platform.runtime_api import Invocation, RestoreRequest, RuntimeApi
from model_registry.core import contract

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
# "The Init phase is limited to 10 seconds. If all three tasks do not complete within 10 seconds, Lambda
# retries the Init phase at the time of the first function invocation with the configured function
# timeout." The limit does not apply to provisioned concurrency or SnapStart, whose init may run for
# 130 seconds or the function timeout, whichever is higher
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
INIT_TIMEOUT_S = 10.0
PREPARED_INIT_FLOOR_S = 130.0
# After-restore hooks running longer than 10 s time the restore out (SnapStartTimeoutException,
# https://docs.aws.amazon.com/lambda/latest/dg/snapstart-troubleshooting.html).
RESTORE_TIMEOUT_S = 10.0
LogSink = Callable[[str, str, str], None]  # (log group, log stream, line)
ON_DEMAND, PROVISIONED, SNAP_START = "on-demand", "provisioned-concurrency", "snap-start"


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
    runtime: str = contract.DEFAULT_LAMBDA_RUNTIME
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


OutcomeKind = Literal["result", "error", "timeout", "crash", "init_error", "init_timeout", "throttled"]


@dataclass
class Outcome:
    """How one invocation (or an init) ended."""

    kind: OutcomeKind
    result: Any = None
    error: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    init_ms: float | None = None
    version: str = ""


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class ExecutionEnvironment:
    """One process running one function version, served by its own Runtime API."""

    _ids = itertools.count(1)
    init_type = ON_DEMAND

    def __init__(
        self,
        spec: VersionSpec,
        base_env: dict[str, str],
        runtime_paths: list[Path],
        sink: LogSink,
        *,
        provisioned: bool = False,
    ):
        if provisioned:
            self.init_type = PROVISIONED
        interpreter = interpreter_for(spec.runtime)
        self._init_state(spec, sink, provisioned=provisioned)
        paths = [
            p.resolve() for p in (spec.code_dir, *(d / "python" for d in spec.layer_dirs), *runtime_paths)
        ]
        env = {
            **base_env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_INITIALIZATION_TYPE": self.init_type,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "_LOCAL_LAMBDA_PATH": os.pathsep.join(str(p) for p in paths),
        }
        if self.init_type == SNAP_START:
            env["_LOCAL_LAMBDA_SNAPSHOT"] = "1"
            # Restores are fork()s, which keep only the calling thread: an OpenMP pool started during
            # init (XGBoost starts one) would be missing in the restored process, whose first parallel
            # region would then hang. One OpenMP thread means no pool.
            env["OMP_NUM_THREADS"] = "1"
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [interpreter, "-S", "-u", str(BOOTSTRAP)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(spec.code_dir),
            start_new_session=True,
        )
        # No PR_SET_PDEATHSIG here: it fires when the *thread* that started the child ends (each HTTP
        # connection has its own). The runtime exits by itself when its Runtime API goes away.
        assert self.process.stdout is not None
        reader = threading.Thread(target=self._forward, args=(self.process.stdout,), daemon=True)
        reader.start()

    def _init_state(self, spec: VersionSpec, sink: LogSink, *, provisioned: bool) -> None:
        """What every environment holds, started or restored."""
        self.spec = spec
        self.id = uuid.uuid4().hex[:12]
        self.log_group = f"/aws/lambda/{spec.function_name}"
        self.log_stream = self._stream_name()
        self._sink = sink
        self.api = RuntimeApi()
        self.init_ms: float | None = None
        self.idle_since = time.monotonic()
        self.ready = False
        self.provisioned = provisioned  # kept initialised for its version's provisioned concurrency
        self.started = time.perf_counter()

    def _stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{self.spec.version}]{self.id}"

    def _forward(self, source: Any) -> None:
        with source:
            for raw in source:
                self._log(raw.decode("utf-8", "replace").rstrip("\n"))

    def _log(self, line: str) -> None:
        self._sink(self.log_group, self.log_stream, line)

    # ------------------------------------------------------------------ init

    def init_timeout_s(self) -> float:
        """Lambda's limit on this environment's init phase."""
        if self.init_type == ON_DEMAND:
            return INIT_TIMEOUT_S
        return max(PREPARED_INIT_FLOOR_S, self.spec.timeout_s)

    def wait_ready(self, timeout_s: float | None = None) -> Outcome | None:
        """Wait for init (or a restore) to finish; an Outcome on failure, None when ready."""
        limit = self.init_timeout_s() if timeout_s is None else timeout_s
        done = self.api.wait(lambda: self.api.ready or self._failure() is not None, limit, self._running)
        failure = self._failure()
        if done and failure is None:
            self.init_ms = _ms(self.started)  # as the caller waits: process start too
            self.ready = True
            return None
        elapsed = _ms(self.started)
        exited = self._exited()
        self.stop()
        if failure is not None:
            return Outcome("init_error", error=failure, init_ms=elapsed)
        if exited:
            return Outcome(
                "init_error",
                error={"errorType": "Runtime.ExitError", "errorMessage": "the runtime exited during init"},
                init_ms=elapsed,
            )
        return Outcome(
            "init_timeout",
            error={"errorType": "Runtime.InitTimeout", "errorMessage": f"init exceeded {limit:.0f} s"},
            init_ms=elapsed,
        )

    def _failure(self) -> dict[str, Any] | None:
        return self.api.init_error

    def _running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _exited(self) -> bool:
        return not self._running()

    # ------------------------------------------------------------------ invocations

    def invoke(self, event: dict[str, Any], context: dict[str, Any], timeout_s: float) -> Outcome:
        """Run one invocation; stop the environment if it overruns ``timeout_s`` or dies."""
        request_id = context["aws_request_id"]
        invocation = Invocation(
            event=json.dumps(event).encode(),
            deadline_ms=int((time.time() + timeout_s) * 1000),
            invoked_function_arn=context["invoked_function_arn"],
            request_id=request_id,
        )
        self._log(f"START RequestId: {request_id} Version: {self.spec.version}")
        start = time.perf_counter()
        self.api.submit(invocation)
        self.api.wait(invocation.done.is_set, timeout_s, self._running)
        duration = _ms(start)
        outcome = self._outcome(invocation, duration, timeout_s)
        self._log(f"END RequestId: {request_id}")
        self._log(
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Memory Size: {self.spec.memory_mb} MB"
            + (f"\tStatus: {outcome.kind}" if outcome.kind in ("timeout", "crash") else "")
        )
        return outcome

    def _outcome(self, invocation: Invocation, duration: float, timeout_s: float) -> Outcome:
        if invocation.done.is_set():
            if invocation.error is not None:
                return Outcome("error", error=invocation.error, duration_ms=duration)
            try:
                return Outcome(
                    "result", result=json.loads(invocation.response or b"null"), duration_ms=duration
                )
            except ValueError:
                error = {"errorType": "Runtime.InvalidResponse", "errorMessage": "response is not JSON"}
                return Outcome("error", error=error, duration_ms=duration)
        if self._running():
            self.stop()
            return Outcome(
                "timeout",
                duration_ms=duration,
                error={
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {timeout_s:.2f} seconds",
                },
            )
        code = self._exit_code()
        self.stop()
        return Outcome(
            "crash",
            duration_ms=duration,
            error={
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {invocation.request_id} Error: Runtime exited with error: "
                f"exit status {code}",
            },
        )

    def _exit_code(self) -> int | str:
        assert self.process is not None
        return self.process.wait(timeout=5) if self.process.poll() is None else self.process.returncode

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    @property
    def alive(self) -> bool:
        return self._running()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.api.close()


class Snapshot(ExecutionEnvironment):
    """A SnapStart snapshot of one published version: a process that ran init and the before-snapshot
    hooks and then, for each cold start, forks a :class:`RestoredEnvironment` instead of serving."""

    init_type = SNAP_START

    def __init__(self, spec: VersionSpec, base_env: dict[str, str], runtime_paths: list[Path], sink: LogSink):
        super().__init__(spec, base_env, runtime_paths, sink)
        self.log_stream = self.log_stream.replace("]", "]snapshot-", 1)

    def restore(self) -> RestoredEnvironment:
        """A new execution environment resumed from this snapshot; call its ``wait_ready``."""
        if not self.alive:
            raise SnapshotFailed(
                {"errorType": "Runtime.RestoreError", "errorMessage": "snapshot unavailable: it stopped"}
            )
        return RestoredEnvironment(self)


class _LogReceiver:
    """A socket a restored environment connects its stdout and stderr to (a fork cannot be handed a
    new pipe); each line goes to the environment's log stream."""

    def __init__(self, forward: Callable[[str], None]) -> None:
        self._forward = forward
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.25)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._run, daemon=True, name="restore-logs").start()

    def _run(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection, connection.makefile("rb") as lines:
                for raw in lines:
                    self._forward(raw.decode("utf-8", "replace").rstrip("\n"))
            return

    def close(self) -> None:
        self._closed = True
        self._listener.close()


class RestoredEnvironment(ExecutionEnvironment):
    """An execution environment resumed from a :class:`Snapshot`: the snapshot forks its process."""

    init_type = SNAP_START

    def __init__(self, snapshot: Snapshot):  # starts no process: the snapshot forks it
        self._init_state(snapshot.spec, snapshot._sink, provisioned=False)
        self._snapshot = snapshot
        self.process = None
        self._logs = _LogReceiver(self._log)
        request = RestoreRequest(self.api.address, self._logs.address)
        self._restore_id = request.restore_id
        snapshot.api.request_restore(request)

    def init_timeout_s(self) -> float:
        return RESTORE_TIMEOUT_S

    def wait_ready(self, timeout_s: float | None = None) -> Outcome | None:
        failed = super().wait_ready(timeout_s)
        if failed is None:  # ready also needs the pid, which the snapshot reports right after the fork
            self._snapshot.api.wait(
                lambda: self._pid is not None, RESTORE_TIMEOUT_S, lambda: self._snapshot.alive
            )
            if self._pid is None:
                self.stop()
                return Outcome(
                    "init_error", error={"errorType": "Runtime.RestoreError", "errorMessage": "no pid"}
                )
        elif failed.kind == "init_timeout":
            failed.error = {
                "errorType": "Lambda.SnapStartTimeoutException",
                "errorMessage": f"the restore did not finish within {RESTORE_TIMEOUT_S:.0f} s",
            }
        return failed

    def _failure(self) -> dict[str, Any] | None:
        if self.api.restore_error is not None:
            return {**self.api.restore_error, "errorType": "Runtime.RestoreError"}
        return self.api.init_error

    @property
    def _pid(self) -> int | None:
        return self._snapshot.api.restored_pids.get(self._restore_id)

    def _running(self) -> bool:
        pid = self._pid
        if pid is None:
            return self._snapshot.alive  # not forked yet: alive while the snapshot can still fork it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _exit_code(self) -> int | str:
        return "unknown (a restored environment is the snapshot's child)"

    @property
    def pid(self) -> int:
        """The process id, or 0 until the snapshot has reported it."""
        return self._pid or 0

    def stop(self) -> None:
        pid = self._pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5  # its parent (the snapshot) reaps it; wait until it is gone
            while self._running() and time.monotonic() < deadline:
                time.sleep(0.01)
        self.api.close()
        self._logs.close()


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

    def drop_snapshot(self, version: str) -> None:
        """Stop and forget a version's snapshot (its version went Inactive, or was deleted)."""
        with self._lock:
            snapshot = self._snapshots.pop(version, None)
        if snapshot is not None:
            snapshot.stop()

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

    def replace(self, old: ExecutionEnvironment, new: ExecutionEnvironment) -> ExecutionEnvironment:
        """Put ``new`` in the place of ``old`` (an environment whose init was cut and is re-run)."""
        with self._lock:
            self._members.discard(old)
            self._members.add(new)
        return new

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
