"""HTTP/1.1 framing at the local data plane's front end, over raw sockets.

API Gateway frames requests like a server: a chunked body is a body, a malformed Content-Length is a
400, a request whose body never arrives never runs, bytes after a request are the next request, and
its own errors are ``{"message": ...}`` JSON. The local front end (uvicorn) must do the same.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from local_platform.frontend import MAX_REQUEST_LINE_AND_HEADER_VALUES
from tests.e2e.conftest import RunningPlatform

pytestmark = pytest.mark.e2e
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"instances": [ROW]}).encode()
PREDICT = "/models/iris/predict"
# make test: a fixed budget with a fixed seed; make bench: FUZZ_EXAMPLES.
FRAMING_EXAMPLES = max(50, int(os.environ.get("FUZZ_EXAMPLES", "300")) // 2)


class Answer:
    """One HTTP response read off the wire."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> object:
        return json.loads(self.body)


def _read_answer(reader) -> Answer | None:
    """The next response on the connection, or None when the server closed it without one."""
    status_line = reader.readline()
    if not status_line:
        return None
    parts = status_line.decode("latin-1").split(" ", 2)
    assert len(parts) == 3 and parts[0] == "HTTP/1.1", status_line
    status = parts[1]
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, value = line.decode("latin-1").split(":", 1)
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers["content-length"]))  # every answer says its length
    return Answer(int(status), headers, body)


def _exchange(url: str, raw: bytes, *, half_close: bool = False, answers: int = 1) -> list[Answer | None]:
    """Send ``raw`` as is; read up to ``answers`` responses (fewer when the server closes)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reader = sock.makefile("rb")
        return [_read_answer(reader) for _ in range(answers)]


def _request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: localhost"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _predict(body: bytes = BODY, **headers: str) -> bytes:
    return _request(
        "POST",
        PREDICT,
        body,
        {"content-type": "application/json", "content-length": str(len(body)), **headers},
    )


def _is_gateway_error(answer: Answer | None, status: int) -> None:
    assert answer is not None, "the connection was closed without an answer"
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"message"}, answer.body
    assert answer.headers.get("apigw-requestid")


@pytest.fixture(scope="module")
def expected(running: RunningPlatform) -> Answer:
    answer = _exchange(running.url, _predict())[0]
    assert answer is not None and answer.status == 200
    return answer


def test_a_chunked_body_is_read_as_the_body(running: RunningPlatform, expected: Answer) -> None:
    chunked = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (BODY[:7], BODY[7:20], BODY[20:])
    )
    raw = _request(
        "POST",
        PREDICT,
        chunked + b"0\r\n\r\n",
        {"content-type": "application/json", "transfer-encoding": "chunked"},
    )
    # the same connection then carries a second request: the chunk framing was consumed, not re-read
    first, second = _exchange(running.url, raw + _predict(), answers=2)
    assert first is not None and first.status == 200 and first.json() == expected.json()
    assert second is not None and second.status == 200 and second.json() == expected.json()


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "0x10", "12, 13", " "])
def test_a_malformed_content_length_is_a_bad_request(running: RunningPlatform, length: str) -> None:
    raw = _request("POST", PREDICT, BODY, {"content-type": "application/json", "content-length": length})
    started = time.monotonic()
    answers = _exchange(running.url, raw, answers=2)
    _is_gateway_error(answers[0], 400)
    assert answers[1] is None, "the connection stays open after a framing error"
    assert time.monotonic() - started < 10, "a malformed length must not wait for a body"


@pytest.mark.parametrize(
    "headers",
    [
        {"transfer-encoding": "gzip"},
        {"transfer-encoding": "chunked, gzip"},
    ],
    ids=["gzip", "chunked-then-gzip"],
)
def test_a_transfer_coding_other_than_chunked_is_a_bad_request(running: RunningPlatform, headers) -> None:
    """HTTP suggests 501; bad input gets a 4xx here, as a 5xx is what alarms and the gate count."""
    raw = _request("POST", PREDICT, BODY, {"content-type": "application/json", **headers})
    _is_gateway_error(_exchange(running.url, raw)[0], 400)


def test_content_length_and_chunked_together_are_not_executed_twice(running: RunningPlatform) -> None:
    """Request smuggling's classic: the chunked framing wins (RFC 9112 §6.3) or the request is refused;
    either way nothing after the chunked body is read as part of it."""
    chunked = f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\n\r\n"
    raw = _request(
        "POST",
        PREDICT,
        chunked,
        {"content-type": "application/json", "transfer-encoding": "chunked", "content-length": "4"},
    )
    answer = _exchange(running.url, raw)[0]
    assert answer is not None
    assert answer.status in (200, 400), answer.body


def _invocations(running: RunningPlatform, function_name: str) -> float:
    """Invocations of a function so far, as CloudWatch has them from the data plane."""
    running.platform.server.plane.telemetry.flush()
    cloudwatch = boto3.client("cloudwatch", endpoint_url=running.settings.endpoint_url)
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Invocations",
        Dimensions=[{"Name": "FunctionName", "Value": function_name}],
        StartTime=now - timedelta(hours=2),
        EndTime=now + timedelta(minutes=5),
        Period=3 * 3600,
        Statistics=["SampleCount"],
    )["Datapoints"]
    return sum(point["SampleCount"] for point in points)


def test_a_body_shorter_than_its_length_never_runs(running: RunningPlatform) -> None:
    """Half-sent requests from eight clients that then half-close: no answer, no invocation, and the
    model's concurrency is not taken from the next real caller."""
    function_name = running.platform.outputs["functions"]["iris"]["function_name"]
    before = _invocations(running, function_name)
    short = _request(
        "POST", PREDICT, BODY[:10], {"content-type": "application/json", "content-length": str(len(BODY))}
    )
    results: list[list[Answer | None]] = []
    threads = [
        threading.Thread(target=lambda: results.append(_exchange(running.url, short, half_close=True)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 8
    for answers in results:
        assert answers[0] is None or answers[0].status == 400, answers[0] and answers[0].body
    answer = _exchange(running.url, _predict())[0]
    assert answer is not None and answer.status == 200, answer and answer.body
    assert _invocations(running, function_name) == before + 1  # the real request, and only it


def test_a_complete_request_then_a_half_close_is_answered(running: RunningPlatform, expected: Answer) -> None:
    answer = _exchange(running.url, _predict(), half_close=True)[0]
    assert answer is not None and answer.status == 200 and answer.json() == expected.json()


def test_pipelined_requests_are_answered_in_order(running: RunningPlatform, expected: Answer) -> None:
    other = json.dumps({"instances": [[6.7, 3.0, 5.2, 2.3]]}).encode()
    answers = _exchange(running.url, _predict() + _predict(other) + _predict(), answers=3)
    assert [a.status if a else None for a in answers] == [200, 200, 200]
    assert answers[0].json() == expected.json() == answers[2].json()
    assert answers[1].json() != expected.json()  # a different flower: the answers are not shuffled


def test_bytes_after_a_request_are_a_new_request_answered_after_the_first(
    running: RunningPlatform, expected: Answer
) -> None:
    first, second, third = _exchange(running.url, _predict() + b"GARBAGE\r\n\r\n", answers=3)
    assert first is not None and first.status == 200 and first.json() == expected.json()
    _is_gateway_error(second, 400)
    assert third is None


@pytest.mark.parametrize("closing", ["HTTP/1.0", "connection: close"])
def test_bytes_after_a_closing_request_are_dropped_after_its_answer(
    running: RunningPlatform, expected: Answer, closing: str
) -> None:
    """RFC 9112 9.6: no request after one that closes the connection is processed; the one before is
    answered, first and in full (found by the raw-request generator: a 400 went out ahead of it)."""
    raw = _predict(connection="close") if closing.startswith("connection") else _predict()
    if closing == "HTTP/1.0":
        raw = raw.replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    first, second = _exchange(running.url, raw + b"GARBAGE\r\n\r\n" + _predict(), answers=2)
    assert first is not None and first.status == 200 and first.json() == expected.json()
    assert second is None


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /models/iris/predict\r\n\r\n",
        b"POST /models/iris/predict HTTP/9.9\r\nhost: x\r\n\r\n",
        b"POST /models/iris/predict HTTP/1.1\r\n\r\n",  # HTTP/1.1 without a Host header
        b"POST /models/iris/predict HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n",
        b"POST /models/iris/predict HTTP/1.1\r\nhost: x\r\nx-a: \x00\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",  # a TLS hello
    ],
    ids=["garbage", "no-version", "http-9.9", "no-host", "header-without-colon", "nul-in-header", "tls"],
)
def test_a_malformed_request_is_a_json_bad_request(running: RunningPlatform, raw: bytes) -> None:
    _is_gateway_error(_exchange(running.url, raw)[0], 400)


def test_the_request_line_and_headers_quota(running: RunningPlatform) -> None:
    """API Gateway: request line and header values together at most 10240 bytes."""
    quota = MAX_REQUEST_LINE_AND_HEADER_VALUES
    within = _predict(**{"x-pad": "a" * (quota - 600)})
    answer = _exchange(running.url, within)[0]
    assert answer is not None and answer.status == 200
    _is_gateway_error(_exchange(running.url, _predict(**{"x-pad": "a" * quota}))[0], 431)
    many = {f"x-pad-{i}": "a" * 100 for i in range(120)}
    _is_gateway_error(_exchange(running.url, _predict(**many))[0], 431)
    long_line = _request("GET", "/models/iris?" + "a" * quota)
    _is_gateway_error(_exchange(running.url, long_line)[0], 414)
    # far beyond any quota, refused by the HTTP parser before it is read whole
    _is_gateway_error(_exchange(running.url, _predict(**{"x-pad": "a" * 200_000}))[0], 431)


def test_an_unknown_method_is_answered_in_json(running: RunningPlatform) -> None:
    for method in ("FOO", "TRACE", "PROPFIND"):
        answer = _exchange(running.url, _predict().replace(b"POST", method.encode(), 1))[0]
        assert answer is not None and 400 <= answer.status < 500, (method, answer and answer.body)
        assert answer.headers["content-type"] == "application/json"
        assert isinstance(answer.json(), dict)


def test_keep_alive_carries_many_requests(running: RunningPlatform, expected: Answer) -> None:
    answers = _exchange(running.url, _predict() * 20, answers=20)
    assert all(a is not None and a.status == 200 and a.json() == expected.json() for a in answers)


TOKEN = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1
)
PATHS = st.sampled_from(
    [
        PREDICT,
        "/models/iris",
        "/models/iris/versions/1/predict",
        "/v2/models/iris/infer",
        "/v2/models/iris",
        "/models/nope/predict",
        "/",
        "/models/iris/predict?x=1&x=2",
        "/models/%69ris/predict",
        "*",
    ]
)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    """A request as any client might put it on the wire: a plausible or odd method, path and version,
    headers with odd names and values, a body framed correctly, wrongly or both ways, and trailing bytes."""
    # no HEAD: whether its answer has a body depends on whether the request line parsed, which the reader
    # here cannot know
    methods = st.one_of(st.sampled_from(["POST", "GET", "PUT", "OPTIONS"]), TOKEN)
    method = draw(methods.filter(lambda m: m != "HEAD"))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "http/1.1"]))
    body = draw(st.one_of(st.just(BODY), st.binary(max_size=64)))
    headers = [("host", draw(st.sampled_from(["localhost", "", "a b", "127.0.0.1:1"])))]
    headers += [
        (
            "content-type",
            draw(st.sampled_from(["application/json", "application/octet-stream", "text/plain"])),
        )
    ]
    headers += draw(st.lists(st.tuples(TOKEN, st.text(st.characters(min_codepoint=1, max_codepoint=255)))))
    framing = draw(
        st.sampled_from(["length", "short", "long", "odd length", "chunked", "bad chunks", "both"])
    )
    if framing in ("length", "short", "long", "both"):
        size = {"length": len(body), "short": max(len(body) - 3, 0), "long": len(body) + 3}.get(framing, 4)
        headers.append(("content-length", str(size)))
    if framing == "odd length":
        headers.append(
            ("content-length", draw(st.sampled_from(["-1", "1.0", "", "+5", "99999999999999999999"])))
        )
    if framing in ("chunked", "bad chunks", "both"):
        headers.append(("transfer-encoding", "chunked"))
        size = f"{len(body):x}" if framing != "bad chunks" else draw(st.sampled_from(["zz", "-1", "", "1;;"]))
        body = size.encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
    head = f"{method} {draw(PATHS)} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body + draw(st.binary(max_size=16))


@settings(
    max_examples=FRAMING_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(raw=raw_requests())
def test_generated_raw_requests_get_no_server_error_and_no_hang(running: RunningPlatform, raw: bytes) -> None:
    """Whatever arrives, every answer is a 2xx-4xx with a JSON body, and the connection ends (the client
    half-closes, so a request still waiting for its body ends too) within the socket's 60 s."""
    note(repr(raw))
    answers = _exchange(running.url, raw, half_close=True, answers=4)
    for answer in answers:
        if answer is None:
            break
        assert answer.status < 500, (answer.status, answer.body[:300], raw[:500])
        if answer.body:
            assert answer.headers["content-type"] == "application/json", raw[:500]
            json.loads(answer.body)
