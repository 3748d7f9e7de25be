"""Local Lambda execution environments: one worker process per environment, one request at a time.

Environments are created up to the function's concurrency limit, reused when idle, and replaced
when they crash or time out, like Lambda's.
"""

from __future__ import annotations

import contextlib
import itertools
import os
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

    @property
    def key(self) -> tuple[str, str]:
        return self.function_name, self.version


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

    def __init__(self, spec: VersionSpec, base_env: dict[str, str], runtime_paths: list[Path], sink: LogSink):
        self.spec = spec
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
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "_HANDLER": spec.handler,
            "_LOCAL_LAMBDA_FD": str(child.fileno()),
            "_LOCAL_LAMBDA_PATH": os.pathsep.join(str(p) for p in paths),
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-S", "-u", str(WORKER)],
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
        self._reader = threading.Thread(target=self._forward_logs, daemon=True)
        self._reader.start()
        self.init_ms: float | None = None
        self.idle_since = time.monotonic()
        self.ready = False
        self.provisioned = False  # kept initialised for its version's provisioned concurrency

    def _forward_logs(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self._sink(self.log_group, self.log_stream, raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_ready(self) -> Outcome | None:
        """Wait for init to finish; an Outcome on failure, None when ready."""
        self._sock.settimeout(INIT_TIMEOUT_S)
        try:
            message = receive(self._sock)
        except (TimeoutError, OSError):
            message = None
        if message is None:
            self.stop()
            return Outcome(
                "init_error", error={"errorType": "Runtime.InitError", "errorMessage": "init failed"}
            )
        if message["type"] != "ready":
            self.stop()
            return Outcome("init_error", error=message)
        self.init_ms = float(message["init_ms"])
        self.ready = True
        return None

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
            code = self.process.wait(timeout=5) if self.process.poll() is None else self.process.returncode
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

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
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
                if environment.provisioned:
                    out.setdefault(environment.spec.version, []).append(environment.process.pid)
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

    def pids(self) -> list[int]:
        with self._lock:
            return [e.process.pid for e in self._members]

    def stop_all(self) -> None:
        with self._lock:
            self._closed = True
            environments = list(self._members)
            self._idle.clear()
            self._members.clear()
        for environment in environments:
            environment.stop()

    @property
    def sizes(self) -> tuple[int, int]:
        with self._lock:
            return self._busy, self._idle_count()
