"""Bootstrap of one local Lambda execution environment.

Run as ``python -S worker.py``: no site-packages, so until it sets ``sys.path`` from the function's
code, its layers and the runtime's boto3 it imports only the standard library, as a Lambda runtime
would. Messages to and from the data plane are length-prefixed JSON on an inherited socket; the
handler's stdout and stderr are the function's log stream.

With ``_LOCAL_LAMBDA_SNAPSHOT=1`` the process is a SnapStart snapshot instead: after init it runs the
function's before-snapshot hooks (``snapshot_restore_py``) and then, for each socket and log pipe the
data plane passes it, forks a restored environment that runs the after-restore hooks and serves
invocations on that socket. fork() carries over the initialised memory, as Lambda's microVM snapshot
does; unlike it, fork() keeps only the calling thread, so threads started during init are not restored
(the data plane runs snapshots with one OpenMP thread for that reason).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

_HEADER = struct.Struct("!I")


def encode(message: dict) -> bytes:
    """One length-prefixed JSON frame (raises TypeError if the message cannot be serialised)."""
    data = json.dumps(message).encode()
    return _HEADER.pack(len(data)) + data


def send(sock: socket.socket, message: dict) -> None:
    sock.sendall(encode(message))


def receive(sock: socket.socket) -> dict | None:
    header = _read_exact(sock, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(sock, _HEADER.unpack(header)[0])
    return None if body is None else json.loads(body)


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class Context:
    """The Lambda context object, rebuilt from what the data plane sends."""

    def __init__(self, data: dict) -> None:
        self.function_name = data["function_name"]
        self.function_version = data["function_version"]
        self.invoked_function_arn = data["invoked_function_arn"]
        self.memory_limit_in_mb = int(data["memory_limit_in_mb"])
        self.aws_request_id = data["aws_request_id"]
        self.log_group_name = data["log_group_name"]
        self.log_stream_name = data["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + data["remaining_ms"] / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _error(exc: BaseException) -> dict:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _run_hooks(kind: str) -> None:
    """Run the function's registered SnapStart hooks (``before_snapshot`` or ``after_restore``)."""
    hooks_module = sys.modules.get("snapshot_restore_py")
    if hooks_module is None:
        return  # the function registered no hooks
    for func, args, kwargs in getattr(hooks_module, f"get_{kind}")():
        func(*args, **kwargs)


def _serve(sock: socket.socket, handler: Callable[[Any, Context], Any]) -> None:
    while (message := receive(sock)) is not None:
        context = Context(message["context"])
        print(f"START RequestId: {context.aws_request_id} Version: {context.function_version}", flush=True)
        started = time.perf_counter()
        try:
            result = handler(message["event"], context)
            # Serialised here, once: a result that cannot be serialised is the function's error.
            frame = encode({"type": "result", "result": result, "duration_ms": _ms(started)})
        except Exception as exc:
            traceback.print_exc()
            frame = encode({"type": "error", **_error(exc), "duration_ms": _ms(started)})
        print(f"END RequestId: {context.aws_request_id}", flush=True)
        print(
            f"REPORT RequestId: {context.aws_request_id}\tDuration: {_ms(started):.2f} ms\t"
            f"Memory Size: {context.memory_limit_in_mb} MB",
            flush=True,
        )
        sock.sendall(frame)


def _restore(
    control: socket.socket, channel: socket.socket, log_fd: int, handler: Callable[[Any, Context], Any]
) -> None:
    """In the forked child: become a restored execution environment serving on ``channel``."""
    started = time.perf_counter()
    os.setsid()  # its own process group, so the data plane can stop it alone
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    control.close()
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
    try:
        _run_hooks("after_restore")
    except Exception as exc:  # Lambda reports a failed restore hook as a restore error
        traceback.print_exc()
        send(channel, {"type": "init_error", **_error(exc)})
        os._exit(1)
    send(channel, {"type": "ready", "init_ms": _ms(started), "pid": os.getpid(), "restored": True})
    try:
        _serve(channel, handler)
    finally:
        os._exit(0)  # never back into the snapshot's loop


def _snapshot(control: socket.socket, handler: Callable[[Any, Context], Any], init_ms: float) -> int:
    """Take the snapshot (before-snapshot hooks), then fork one restored environment per request."""
    try:
        _run_hooks("before_snapshot")
    except Exception as exc:  # Lambda fails the version's snapshot, and so its publication
        traceback.print_exc()
        send(control, {"type": "init_error", **_error(exc)})
        return 1
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored environments are reaped without waiting
    send(control, {"type": "ready", "init_ms": init_ms})
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 1, 2)
        except OSError:
            return 0
        if len(fds) != 2:
            return 0  # the data plane closed the control socket: the snapshot is deleted
        channel_fd, log_fd = fds
        if os.fork() == 0:
            _restore(control, socket.socket(fileno=channel_fd), log_fd, handler)
        os.close(channel_fd)
        os.close(log_fd)


def main() -> int:
    sock = socket.socket(fileno=int(os.environ.pop("_LOCAL_LAMBDA_FD")))
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # this bootstrap's folder is not part of the function
    for path in reversed(os.environ.pop("_LOCAL_LAMBDA_PATH").split(os.pathsep)):
        sys.path.insert(0, path)
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    start = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # Lambda reports Runtime.ImportModuleError / init errors the same way
        traceback.print_exc()
        send(sock, {"type": "init_error", **_error(exc)})
        return 1
    init_ms = (time.perf_counter() - start) * 1000
    if os.environ.pop("_LOCAL_LAMBDA_SNAPSHOT", "") == "1":
        return _snapshot(sock, handler, init_ms)
    send(sock, {"type": "ready", "init_ms": init_ms})
    _serve(sock, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
