"""The payload-2.0 events the tests and the data plane build have the published format's shape."""

from __future__ import annotations

import base64
import json

from local_platform.events import build_event, map_result
from tests.helpers import REPO_ROOT

PUBLISHED = json.loads((REPO_ROOT / "tests/events/apigw_http_v2_published.json").read_text())


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_built_event_matches_the_published_shape() -> None:
    event = build_event(
        method="POST",
        path="/my/path",
        route_key="$default",
        path_parameters={"parameter1": "v"},
        headers={"Header1": "value1", "Cookie": "cookie1; cookie2"},
        query="parameter1=value1&parameter1=value2&parameter2=value",
        body=b"Hello from Lambda",
    )
    published = _shape(PUBLISHED)
    ours = _shape(event)
    optional = {"stageVariables", "requestContext.authentication", "requestContext.authorizer"}
    free_form = {"headers", "pathParameters", "queryStringParameters"}  # maps of the request's own keys
    for key, kind in published.items():
        if key in optional:
            continue
        assert key in ours, f"missing {key}"
        if isinstance(kind, dict) and key not in free_form:
            for inner, inner_kind in kind.items():
                if f"{key}.{inner}" not in optional:
                    assert inner in ours[key], f"missing {key}.{inner}"
                    if not isinstance(inner_kind, dict):
                        assert ours[key][inner] == inner_kind, f"{key}.{inner}"
    assert event["queryStringParameters"] == PUBLISHED["queryStringParameters"]
    assert event["cookies"] == PUBLISHED["cookies"]
    assert event["rawQueryString"] == PUBLISHED["rawQueryString"]
    assert event["body"] == PUBLISHED["body"] and event["isBase64Encoded"] is False


def test_binary_bodies_are_base64_encoded_and_results_mapped_back() -> None:
    event = build_event(
        method="POST",
        path="/x",
        route_key="$default",
        body=b"\x00\x01",
        headers={"content-type": "application/octet-stream"},
    )
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == b"\x00\x01"
    result = map_result(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(b"\x02").decode(),
            "isBase64Encoded": True,
        }
    )
    assert (result.status, result.body, result.headers) == (
        201,
        b"\x02",
        {"Content-Type": "application/octet-stream"},
    )
    bare = map_result({"predictions": [1]})  # API Gateway's inference for results without statusCode
    assert bare.status == 200 and json.loads(bare.body) == {"predictions": [1]}


def test_the_gateways_canned_answers_cannot_be_changed_by_a_request() -> None:
    """They are shared by every request and thread: a request's headers go on a copy."""
    import pytest

    from local_platform.events import INTERNAL_ERROR

    with pytest.raises(TypeError):
        INTERNAL_ERROR.headers["apigw-requestid"] = "one request"  # type: ignore[index]
    answered = INTERNAL_ERROR.with_headers({"apigw-requestid": "r-1", "content-type": "text/plain"})
    assert answered.headers == {"apigw-requestid": "r-1", "content-type": "application/json"}
    assert dict(INTERNAL_ERROR.headers) == {"content-type": "application/json"}
