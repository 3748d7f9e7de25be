"""Bootstrap of one local Lambda execution environment.

Run as ``python -S worker.py``: no site-packages, so until it sets ``sys.path`` from the function's
code, its layers and the runtime's boto3 it imports only the standard library, as a Lambda runtime
would. Messages to and from the data plane are length-prefixed JSON on an inherited socket; the
handler's stdout and stderr are the function's log stream.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import struct
import sys
import time
import traceback

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
    send(sock, {"type": "ready", "init_ms": (time.perf_counter() - start) * 1000})
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
