"""The front end's own decisions, without a socket: API Gateway's head quota and how headers pass on."""

from __future__ import annotations

from local_platform.events import HttpResult, canned
from local_platform.frontend import (
    BAD_REQUEST,
    HEADERS_TOO_LARGE,
    MAX_REQUEST_LINE_AND_HEADER_VALUES,
    URI_TOO_LONG,
    _header_dict,
    _refused_head,
    gateway_headers,
)


def _scope(path: bytes = b"/models/iris/predict", query: bytes = b"", headers=(), version: str = "1.1"):
    return {
        "method": "POST",
        "raw_path": path,
        "query_string": query,
        "headers": list(headers),
        "http_version": version,
    }


def test_the_request_line_and_header_values_share_one_quota() -> None:
    line = len("POST /models/iris/predict HTTP/1.1")
    room = MAX_REQUEST_LINE_AND_HEADER_VALUES - line
    assert _refused_head(_scope(headers=[(b"x-pad", b"a" * room)])) is None
    assert _refused_head(_scope(headers=[(b"x-pad", b"a" * (room + 1))])) is HEADERS_TOO_LARGE
    # header names do not count, values do
    assert _refused_head(_scope(headers=[(b"x" * 5000, b"a" * (room // 2))] * 2)) is None
    assert _refused_head(_scope(query=b"q" * MAX_REQUEST_LINE_AND_HEADER_VALUES)) is URI_TOO_LONG


def test_only_http_1_is_served() -> None:
    assert _refused_head(_scope(version="1.0")) is None
    assert _refused_head(_scope(version="2.0")) is BAD_REQUEST


def test_repeated_headers_are_joined_as_api_gateway_joins_them() -> None:
    joined = _header_dict(
        [(b"x-a", b"1"), (b"cookie", b"a=1"), (b"x-a", b"2"), (b"cookie", b"b=2"), (b"x-b", b"\xe9")]
    )
    assert joined == {"x-a": "1,2", "cookie": "a=1; b=2", "x-b": "é"}


def test_every_answer_carries_its_length_a_request_id_and_a_date() -> None:
    result = HttpResult(200, {"content-type": "application/json", "transfer-encoding": "chunked"}, b"{}")
    headers = dict(gateway_headers(result))
    assert headers[b"content-length"] == b"2" and b"transfer-encoding" not in headers
    assert headers[b"apigw-requestid"] and headers[b"date"].endswith(b"GMT")
    # a canned answer is shared by every request: it is not changed by being sent
    canned_answer = canned(400, "Bad Request")
    first, second = dict(gateway_headers(canned_answer)), dict(gateway_headers(canned_answer))
    assert first[b"apigw-requestid"] != second[b"apigw-requestid"]
    assert "apigw-requestid" not in canned_answer.headers
