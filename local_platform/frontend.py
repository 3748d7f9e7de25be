"""The local data plane's HTTP front end: uvicorn frames HTTP/1.1, we answer as API Gateway would.

Framing is a library's job: uvicorn with h11 (strict HTTP/1.1, the server MLServer uses) reads chunked
bodies, refuses bad Content-Length and Transfer-Encoding, holds a pipelined request back until the
answer before it is written, and never runs a request whose body never arrived. What we add is what
API Gateway adds: its quotas, and its own errors as ``{"message": ...}`` JSON instead of a server's
plain text or HTML.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from local_platform.dataplane import (
    IDLE_ENVIRONMENT_S,
    MAX_REQUEST_BYTES,
    PROVISION_INTERVAL_S,
    TOO_LARGE,
    DataPlane,
)
from local_platform.events import INTERNAL_ERROR, HttpResult, canned

LOG = logging.getLogger("dataplane")
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# "Total combined size of request line and header values: 10240 bytes" (not adjustable):
# https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
# AWS documents the quota, not the status it answers with: ours are 414 (the request line alone) and 431.
MAX_REQUEST_LINE_AND_HEADER_VALUES = 10240
# h11 refuses a request head larger than this (header names count too): a backstop far above the quota.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
# A body over the payload quota is read and dropped up to this much, so the client reads our 413
# instead of a reset; beyond it the connection is closed.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
URI_TOO_LONG = canned(414, "Request-URI Too Long")
HEADERS_TOO_LARGE = canned(431, "Request Header Fields Too Large")
BAD_REQUEST = canned(400, "Bad Request")
# Whatever a client gets wrong is a 4xx, never a 5xx (where h11 hints 501 for an unknown transfer coding,
# or HTTP would say 505 for an unknown version): a 5xx means the platform failed, and it is what alarms
# and the rollout gate count.
_PROTOCOL_ERRORS = {431: HEADERS_TOO_LARGE}
KEEP_ALIVE_S = 60  # idle keep-alive connections are closed after this long
WORKER_THREADS = 256  # invocations block a thread each, as many as the functions' concurrency allows


def gateway_headers(result: HttpResult) -> list[tuple[bytes, bytes]]:
    """The response headers as API Gateway sends them: a request id, a date and the body's length on every
    answer (never chunked)."""
    stamped = result
    if not {"apigw-requestid", "date"} <= {name.lower() for name in result.headers}:
        # DataPlane.handle stamps the answers it routes; the front end's own refusals are stamped here
        stamped = result.with_headers({"apigw-requestid": str(uuid.uuid4()), "date": formatdate(usegmt=True)})
    headers = [
        (name.lower().encode("latin-1"), str(value).encode("latin-1"))
        for name, value in stamped.headers.items()
        if name.lower() not in ("content-length", "connection", "transfer-encoding")
    ]
    return [*headers, (b"content-length", str(len(result.body)).encode())]


def _refused_head(scope: Scope) -> HttpResult | None:
    """API Gateway's request-line-and-header-values quota (and HTTP/1.x: h11 parses any ``HTTP/d.d``),
    or None when the request is within them."""
    if scope["http_version"] not in ("1.0", "1.1"):
        return BAD_REQUEST
    query = scope["query_string"]
    target = len(scope["raw_path"]) + (len(query) + 1 if query else 0)
    line = len(scope["method"]) + 1 + target + len(" HTTP/1.1")
    if line > MAX_REQUEST_LINE_AND_HEADER_VALUES:
        return URI_TOO_LONG
    if line + sum(len(value) for _, value in scope["headers"]) > MAX_REQUEST_LINE_AND_HEADER_VALUES:
        return HEADERS_TOO_LARGE
    return None


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers by lower-case name, repeated ones joined as API Gateway joins them (cookies with ``;``)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name in headers:
            value = f"{headers[name]}{'; ' if name == 'cookie' else ','}{value}"
        headers[name] = value
    return headers


async def _read_body(receive: Receive) -> tuple[bytes, bool] | None:
    """The whole request body and whether it is over the payload quota (then it is read and dropped up
    to DRAIN_LIMIT_BYTES, so the client reads the 413 instead of a reset); None when the client went
    away before sending all of it, and then nothing runs."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_REQUEST_BYTES:
            parts.append(chunk)
        if size > DRAIN_LIMIT_BYTES or not message.get("more_body", False):
            break
    return (b"".join(parts), False) if size <= MAX_REQUEST_BYTES else (b"", True)


def _declared_length(scope: Scope) -> int:
    declared = dict(scope["headers"]).get(b"content-length", b"")
    return int(declared) if declared.isdigit() else 0


class GatewayApp:
    """The ASGI application: one HTTP request in, ``DataPlane.handle`` on a worker thread, its answer out."""

    def __init__(self, plane: DataPlane, executor: ThreadPoolExecutor) -> None:
        self.plane = plane
        self.executor = executor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off; nothing else is served
            return
        result = _refused_head(scope)
        if result is None and _declared_length(scope) > DRAIN_LIMIT_BYTES:
            result = TOO_LARGE  # not worth reading: answered at once, and the connection closed
        if result is None:
            read = await _read_body(receive)
            if read is None:
                return  # the request never completed: like API Gateway, run nothing
            body, too_large = read
            result = TOO_LARGE if too_large else await self._handle(scope, body)
        headers = gateway_headers(result)
        if result is TOO_LARGE:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": result.status, "headers": headers})
        await send({"type": "http.response.body", "body": result.body})

    async def _handle(self, scope: Scope, body: bytes) -> HttpResult:
        client = scope.get("client") or ("127.0.0.1", 0)
        path = scope["raw_path"].decode("latin-1")
        query = scope["query_string"].decode("latin-1")
        headers = _header_dict(scope["headers"])
        call = (scope["method"], path, query, headers, body, client[0])
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self.plane.handle, *call)
        except Exception:  # a control-plane read failed: API Gateway would answer 500 too
            LOG.exception("data plane error on %s %s", scope["method"], path)
            return INTERNAL_ERROR


class _RecordingConnection(h11.Connection):
    """An h11 connection that keeps the last framing error, so the answer can say which it was."""

    refusal: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as error:
            self.refusal = error
            raise


class GatewayProtocol(H11Protocol):
    """uvicorn's h11 protocol with API Gateway's error bodies, and an answer for a client that sends a
    complete request and then half-closes its side of the connection (``shutdown(SHUT_WR)``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn: _RecordingConnection = _RecordingConnection(
            h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES
        )
        self._close_after_answer = False  # the client half-closed, or sent bytes after a closing request

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Headers and body may go out in separate writes: without this (uvloop sets it, asyncio's own loop
        # does not on a socket handed to it), Nagle and delayed ACK add ~40 ms to an answer.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            # Bytes after a request that asked to close the connection (HTTP/1.0, Connection: close):
            # RFC 9112 9.6, no further request on this connection is processed. The request before them
            # is complete and gets its answer first; then the connection closes.
            LOG.info("front end dropped bytes after a closing request: %s", self.conn.refusal or msg)
            self._close_after_answer = True
            return
        refusal = self.conn.refusal
        result = _PROTOCOL_ERRORS.get(refusal.error_status_hint, BAD_REQUEST) if refusal else BAD_REQUEST
        LOG.info("front end refused a request: %s", refusal or msg)
        headers = [*gateway_headers(result), (b"connection", b"close")]
        try:
            for event in (
                h11.Response(status_code=result.status, headers=headers),
                h11.Data(data=result.body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # a response was already under way: nothing more can be said
            pass
        self.transport.close()

    def eof_received(self) -> bool | None:  # type: ignore[override]
        # A request whose body is complete still gets its answer (the write side stays open until
        # then); a partial one is dropped with the connection, and never runs.
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not cycle.more_body:
            self._close_after_answer = True
            return True
        return None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._close_after_answer:
            self.transport.close()


class DataPlaneServer:
    """The data plane behind uvicorn on 127.0.0.1, plus the housekeeping Lambda does in the background."""

    def __init__(self, plane: DataPlane, port: int = 0, host: str = "127.0.0.1") -> None:
        self.plane = plane
        self._socket = socket.create_server((host, port), backlog=2048)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="invoke")
        config = uvicorn.Config(
            GatewayApp(plane, self._executor),
            http=GatewayProtocol,
            lifespan="off",
            ws="none",
            access_log=False,
            server_header=False,
            date_header=False,
            log_level="warning",
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=5,
            h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, daemon=True, name="dataplane")
        self._stopping = threading.Event()
        self._housekeeper = threading.Thread(target=self._housekeeping, daemon=True, name="housekeeping")

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    def _housekeeping(self) -> None:
        """Provisioned concurrency and SnapStart snapshots every second; idle environments reclaimed
        every minute."""
        last_reap = time.monotonic()
        while not self._stopping.wait(PROVISION_INTERVAL_S):
            try:
                self.plane.provision()
                self.plane.prepare_snapshots()
                if time.monotonic() - last_reap > IDLE_ENVIRONMENT_S / 10:
                    self.plane.reclaim_idle()
                    last_reap = time.monotonic()
            except Exception:  # a failed round is retried on the next one
                LOG.exception("housekeeping failed")

    def start(self, timeout_s: float = 10.0) -> DataPlaneServer:
        """Serve in a background thread; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the data plane's HTTP server did not start on {self.url}")
            time.sleep(0.01)
        self._housekeeper.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._housekeeper.is_alive():
            self._housekeeper.join(timeout=90)  # may be initialising an environment
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.plane.stop()

    def __enter__(self) -> DataPlaneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
