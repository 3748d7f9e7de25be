"""API Gateway HTTP API payload format 2.0: events in, Lambda results out, as API Gateway does it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def _is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return ct.startswith(TEXT_TYPES) or ct.endswith("+json") or ct == ""


def build_event(
    *,
    method: str,
    path: str,
    route_key: str,
    path_parameters: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    body: bytes = b"",
    api_id: str = "local",
    account_id: str = "123456789012",
    source_ip: str = "127.0.0.1",
    stage: str = "$default",
    domain_name: str = "127.0.0.1",
) -> dict[str, Any]:
    """A payload-2.0 event: header names lower-cased and repeated values comma-joined, cookies split
    out, text bodies passed as text and any other body base64-encoded, as API Gateway sends them."""
    lowered: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    query_parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        query_parameters[key] = f"{query_parameters[key]},{value}" if key in query_parameters else value
    now = time.time()
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": stage,
            "time": formatdate(now, usegmt=True),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query_parameters:
        event["queryStringParameters"] = query_parameters
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        if _is_text(lowered.get("content-type", "")) and not lowered.get("inference-header-content-length"):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


@dataclass(frozen=True)
class HttpResult:
    """An HTTP response as API Gateway returns it to the client. Immutable: the gateway's canned answers
    below are shared by every request and thread, so per-request headers go on a copy."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def with_headers(self, defaults: Mapping[str, str]) -> HttpResult:
        """A copy with ``defaults`` added where this result has no such header."""
        return replace(self, headers={**defaults, **self.headers})


def canned(status: int, message: str) -> HttpResult:
    """One of API Gateway's own answers: ``{"message": ...}``, headers frozen."""
    return HttpResult(
        status,
        MappingProxyType({"content-type": "application/json"}),
        json.dumps({"message": message}, separators=(",", ":")).encode(),
    )


def map_result(result: Any) -> HttpResult:
    """Map a Lambda result to HTTP as API Gateway does for payload 2.0 (including its inference of a
    bare result without statusCode as a 200 JSON body)."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(name)] = ",".join(str(v) for v in values)
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        if body and not any(k.lower() == "content-type" for k in headers):
            headers["content-type"] = "application/json"
        return HttpResult(int(result["statusCode"]), headers, body)
    return HttpResult(200, {"content-type": "application/json"}, json.dumps(result).encode())


INTERNAL_ERROR = canned(500, "Internal Server Error")
GATEWAY_TIMEOUT = canned(504, "Service Unavailable")
NOT_FOUND = canned(404, "Not Found")
TOO_MANY_REQUESTS = canned(429, "Too Many Requests")


@dataclass
class LambdaContext:
    """The context object the Lambda runtime passes to handlers."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
