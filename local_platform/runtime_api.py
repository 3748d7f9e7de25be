"""The Lambda Runtime API of one local execution environment, as Lambda serves it to a runtime.

Each environment's process runs the AWS Lambda runtime interface client (``awslambdaric``, what
Lambda's Python runtimes run) with ``AWS_LAMBDA_RUNTIME_API`` pointing here: it asks for the next
invocation, posts the response or the error, and reports init errors, exactly as on Lambda
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). SnapStart adds ``restore/next``
and ``restore/error`` (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html).

Locally, ``restore/next`` is also how the data plane asks a snapshot for a restore: it answers with
the address of the restored environment's own Runtime API, and the snapshot forks (see bootstrap.py).
"""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/2018-06-01/runtime"
# Synchronous invocation payload (request and response) limit: 6 MB
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_RESPONSE_BYTES = 6_291_556
_INVOCATION = re.compile(rf"^{API}/invocation/([^/]+)/(response|error)$")
# Headers of the local restore handshake (not part of Lambda's API: how a snapshot is told to fork).
RESTORE_API_HEADER = "Local-Restore-Runtime-Api"
RESTORE_LOG_HEADER = "Local-Restore-Log"
RESTORE_ID_HEADER = "Local-Restore-Id"
RESTORED_PID_HEADER = "Local-Restored-Pid"


@dataclass
class Invocation:
    """One invocation handed to the runtime, and how it ended."""

    event: bytes
    deadline_ms: int
    invoked_function_arn: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = ""
    response: bytes | None = None
    error: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class RestoreRequest:
    """A cold start served by a SnapStart snapshot: the restored environment's addresses."""

    runtime_api: str
    log_address: str
    restore_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class RuntimeApi:
    """The Runtime API of one execution environment, on 127.0.0.1, until :meth:`close`."""

    def __init__(self) -> None:
        self._invocations: queue.SimpleQueue[Invocation] = queue.SimpleQueue()
        self._restores: queue.SimpleQueue[RestoreRequest] = queue.SimpleQueue()
        self._current: Invocation | None = None
        self._state = threading.Condition()
        self.ready = False  # the runtime finished init and asked for work (or, in a snapshot, a restore)
        self.init_error: dict[str, Any] | None = None
        self.restore_error: dict[str, Any] | None = None
        self.restored_pids: dict[str, int] = {}  # restore id -> pid of the forked environment
        self.closed = False
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="runtime-api")
        self._thread.start()

    # ------------------------------------------------------------------ the data plane's side

    def wait(self, condition: Callable[[], bool], timeout_s: float, alive: Callable[[], bool]) -> bool:
        """Wait until ``condition()`` holds (True), the process dies or ``timeout_s`` passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._state:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not alive():
                    return condition()
                self._state.wait(min(remaining, 0.05))
            return True

    def submit(self, invocation: Invocation) -> None:
        """Hand one invocation to the runtime (it picks it up on its next ``invocation/next``)."""
        self._invocations.put(invocation)

    def request_restore(self, request: RestoreRequest) -> None:
        """Ask the snapshot this API belongs to for one restored environment."""
        self._restores.put(request)

    def _notify(self) -> None:
        with self._state:
            self._state.notify_all()

    def close(self) -> None:
        """Stop serving (without waiting for the server loop); a runtime still waiting for work gets its
        connection closed."""
        if self.closed:
            return
        self.closed = True
        self._notify()
        threading.Thread(target=self._shutdown, daemon=True, name="runtime-api-close").start()

    def _shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ the runtime's side

    def next_invocation(self) -> Invocation | None:
        with self._state:
            self.ready = True
            self._current = None
            self._state.notify_all()
        while not self.closed:
            try:
                invocation = self._invocations.get(timeout=0.25)
            except queue.Empty:
                continue
            self._current = invocation
            return invocation
        return None

    def finish(self, request_id: str, response: bytes | None, error: dict[str, Any] | None) -> bool:
        current = self._current
        if current is None or current.request_id != request_id:
            return False
        current.response, current.error = response, error
        current.done.set()
        self._notify()
        return True

    def next_restore(self, restored: tuple[str, int] | None) -> RestoreRequest | None:
        with self._state:
            if restored is not None:
                self.restored_pids[restored[0]] = restored[1]
            self.ready = True  # the before-snapshot hooks ran: the snapshot is taken
            self._state.notify_all()
        while not self.closed:
            try:
                return self._restores.get(timeout=0.25)
            except queue.Empty:
                continue
        return None

    def record_init_error(self, error: dict[str, Any]) -> None:
        self.init_error = error
        self._notify()

    def record_restore_error(self, error: dict[str, Any]) -> None:
        self.restore_error = error
        self._notify()


def _error_document(body: bytes, error_type: str | None) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {"errorMessage": str(document)}
    document.setdefault("errorType", error_type or "Runtime.Unknown")
    document.setdefault("errorMessage", "")
    return document


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: RuntimeApi

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reply(
        self, status: int, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == f"{API}/invocation/next":
            invocation = self.api.next_invocation()
            if invocation is None:
                self.close_connection = True
                return
            self._reply(
                200,
                invocation.event,
                {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_function_arn,
                    "Lambda-Runtime-Trace-Id": invocation.trace_id,
                },
            )
        elif self.path == f"{API}/restore/next":
            pid = self.headers.get(RESTORED_PID_HEADER)
            restored = (self.headers.get(RESTORE_ID_HEADER, ""), int(pid)) if pid and pid.isdigit() else None
            request = self.api.next_restore(restored)
            if request is None:
                self.close_connection = True
                return
            self._reply(
                200,
                {},
                {
                    RESTORE_API_HEADER: request.runtime_api,
                    RESTORE_LOG_HEADER: request.log_address,
                    RESTORE_ID_HEADER: request.restore_id,
                },
            )
        else:
            self._reply(404, {"errorMessage": f"unknown path {self.path}", "errorType": "InvalidPath"})

    def do_POST(self) -> None:
        body = self._body()
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        if self.path == f"{API}/init/error":
            self.api.record_init_error(_error_document(body, error_type))
            self._reply(202, {"status": "OK"})
            return
        if self.path == f"{API}/restore/error":
            self.api.record_restore_error(_error_document(body, error_type))
            self._reply(202, {"status": "OK"})
            return
        match = _INVOCATION.match(self.path)
        if match is None:
            self._reply(404, {"errorMessage": f"unknown path {self.path}", "errorType": "InvalidPath"})
            return
        request_id, kind = match.groups()
        if kind == "response" and len(body) > MAX_RESPONSE_BYTES:
            # Lambda refuses the response and fails the invocation with this error.
            too_large = {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"Response payload size ({len(body)} bytes) exceeded maximum allowed "
                f"payload size ({MAX_RESPONSE_BYTES} bytes).",
            }
            self.api.finish(request_id, None, too_large)
            self._reply(413, too_large)
            return
        error = _error_document(body, error_type) if kind == "error" else None
        if not self.api.finish(request_id, body if kind == "response" else None, error):
            self._reply(
                400, {"errorMessage": f"invalid request id {request_id}", "errorType": "InvalidRequestID"}
            )
            return
        self._reply(202, {"status": "OK"})

    def log_message(self, format: str, *args: Any) -> None:
        pass
