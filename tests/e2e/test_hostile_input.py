"""A corpus of hostile and malformed requests through the real HTTP path of the local platform.

Each must get a documented 4xx with a JSON error body, none a 5xx, and the platform must keep serving.
"""

from __future__ import annotations

import http.client
import json
import secrets

import pytest
import requests

from tests.e2e.conftest import RunningPlatform

pytestmark = pytest.mark.e2e
ROW = [5.1, 3.5, 1.4, 0.2]
JSON = {"content-type": "application/json"}


def _corpus() -> list[tuple[str, str, str, bytes, dict[str, str], int]]:
    """(id, method, path, body, headers, expected status)."""
    p = "/models/iris/predict"
    v2 = "/v2/models/iris/infer"
    cases: list[tuple[str, str, str, bytes, dict[str, str], int]] = [
        ("broken json", "POST", p, b'{"instances": [[1,2', JSON, 400),
        ("not json at all", "POST", p, b"hello", JSON, 400),
        ("empty body", "POST", p, b"", JSON, 400),
        ("json null", "POST", p, b"null", JSON, 400),
        ("json array", "POST", p, b"[[1,2,3,4]]", JSON, 400),
        ("json string", "POST", p, b'"instances"', JSON, 400),
        ("json number", "POST", p, b"42", JSON, 400),
        ("lone surrogate escape", "POST", p, b'{"instances": "\\ud800', JSON, 400),
        ("invalid utf-8", "POST", p, b'{"instances": "\xff\xfe"}', JSON, 400),
        (
            "form content type",
            "POST",
            p,
            b"a=1&b=2",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
        ),
        ("xml content type", "POST", p, b"<a/>", {"content-type": "application/xml"}, 415),
        ("multipart", "POST", p, b"--x--", {"content-type": "multipart/form-data; boundary=x"}, 415),
        ("text/plain", "POST", p, b"1,2,3,4", {"content-type": "text/plain"}, 415),
        ("deeply nested", "POST", p, b'{"instances": ' + b"[" * 50000 + b"]" * 50000 + b"}", JSON, 400),
        ("deep objects", "POST", p, b'{"a":' * 20000 + b"1" + b"}" * 20000, JSON, 400),
        ("no instances key", "POST", p, b'{"rows": [[1,2,3,4]]}', JSON, 400),
        ("instances is object", "POST", p, b'{"instances": {"a": 1}}', JSON, 400),
        ("instances is string", "POST", p, b'{"instances": "1,2,3,4"}', JSON, 400),
        ("instances is number", "POST", p, b'{"instances": 4}', JSON, 400),
        (
            "return_probabilities string",
            "POST",
            p,
            b'{"instances": [[1,2,3,4]], "return_probabilities": "yes"}',
            JSON,
            400,
        ),
        ("inputs wrong type", "POST", p, b'{"inputs": "x"}', JSON, 400),
        ("empty batch", "POST", p, b'{"instances": []}', JSON, 422),
        ("empty row", "POST", p, b'{"instances": [[]]}', JSON, 422),
        ("flat row", "POST", p, b'{"instances": [1,2,3,4]}', JSON, 422),
        ("3d", "POST", p, b'{"instances": [[[1,2,3,4]]]}', JSON, 422),
        ("ragged", "POST", p, b'{"instances": [[1,2,3,4],[1,2]]}', JSON, 422),
        ("too few features", "POST", p, b'{"instances": [[1,2,3]]}', JSON, 422),
        ("too many features", "POST", p, b'{"instances": [[1,2,3,4,5]]}', JSON, 422),
        ("strings for numbers", "POST", p, b'{"instances": [["a","b","c","d"]]}', JSON, 422),
        ("numeric strings", "POST", p, b'{"instances": [["1","2","3","4"]]}', JSON, 422),
        ("nulls", "POST", p, b'{"instances": [[null,1,2,3]]}', JSON, 422),
        ("booleans", "POST", p, b'{"instances": [[true,false,true,false]]}', JSON, 422),
        ("objects in row", "POST", p, b'{"instances": [[{},1,2,3]]}', JSON, 422),
        ("NaN", "POST", p, b'{"instances": [[NaN,1,2,3]]}', JSON, 422),
        ("Infinity", "POST", p, b'{"instances": [[Infinity,1,2,3]]}', JSON, 422),
        ("-Infinity", "POST", p, b'{"instances": [[-Infinity,1,2,3]]}', JSON, 422),
        ("huge float", "POST", p, b'{"instances": [[1e400,1,2,3]]}', JSON, 422),
        ("huge int", "POST", p, b'{"instances": [[' + b"9" * 5000 + b",1,2,3]]}", JSON, 400),
        ("wrong feature names", "POST", p, b'{"instances": [{"a":1,"b":2,"c":3,"d":4}]}', JSON, 422),
        (
            "missing feature",
            "POST",
            p,
            b'{"instances": [{"sepal length (cm)":1,"sepal width (cm)":2,"petal length (cm)":3}]}',
            JSON,
            422,
        ),
        ("columns wrong names", "POST", p, b'{"inputs": {"x": [1]}}', JSON, 422),
        (
            "columns ragged",
            "POST",
            p,
            b'{"inputs": {"sepal length (cm)":[1,2],"sepal width (cm)":[1],"petal length (cm)":[1],'
            b'"petal width (cm)":[1]}}',
            JSON,
            422,
        ),
        ("mixed rows", "POST", p, b'{"instances": [{"a": 1}, [1,2,3,4]]}', JSON, 422),
        ("batch over limit", "POST", p, json.dumps({"instances": [ROW] * 1001}).encode(), JSON, 413),
        (
            "body over 5 MB",
            "POST",
            p,
            b'{"instances": [' + b"[1,2,3,4]," * 600000 + b"[1,2,3,4]]}",
            JSON,
            413,
        ),
        ("body over 10 MB", "POST", p, b" " * (10 * 1024 * 1024 + 10), JSON, 413),
        (
            "unknown model",
            "POST",
            "/models/nope/predict",
            json.dumps({"instances": [ROW]}).encode(),
            JSON,
            404,
        ),
        (
            "unknown version",
            "POST",
            "/models/iris/versions/999/predict",
            json.dumps({"instances": [ROW]}).encode(),
            JSON,
            404,
        ),
        (
            "version zero",
            "POST",
            "/models/iris/versions/0/predict",
            json.dumps({"instances": [ROW]}).encode(),
            JSON,
            404,
        ),
        ("negative version", "POST", "/models/iris/versions/-1/predict", b"{}", JSON, 404),
        ("version not a number", "POST", "/models/iris/versions/latest/predict", b"{}", JSON, 404),
        ("huge version", "POST", "/models/iris/versions/99999999999999999999/predict", b"{}", JSON, 404),
        ("traversal in name", "POST", "/models/../models/iris/predict", b"{}", JSON, 404),
        ("encoded traversal", "POST", "/models/%2e%2e%2firis/predict", b"{}", JSON, 404),
        ("traversal in version", "POST", "/models/iris/versions/..%2f..%2fx/predict", b"{}", JSON, 404),
        ("unknown route under model", "POST", "/models/iris/explain", b"{}", JSON, 404),
        ("unknown top route", "GET", "/admin", b"", {}, 404),
        ("GET on predict", "GET", p, b"", {}, 405),
        ("PUT on predict", "PUT", p, json.dumps({"instances": [ROW]}).encode(), JSON, 405),
        ("DELETE on predict", "DELETE", p, b"", {}, 405),
        ("PATCH on infer", "PATCH", v2, b"{}", JSON, 405),
        ("v2 empty inputs", "POST", v2, b'{"inputs": []}', JSON, 400),
        ("v2 inputs not list", "POST", v2, b'{"inputs": {}}', JSON, 400),
        (
            "v2 bytes datatype",
            "POST",
            v2,
            b'{"inputs": [{"name":"x","shape":[1,4],"datatype":"BYTES","data":["a","b","c","d"]}]}',
            JSON,
            422,
        ),
        (
            "v2 shape mismatch",
            "POST",
            v2,
            b'{"inputs": [{"name":"x","shape":[2,4],"datatype":"FP64","data":[1,2,3,4]}]}',
            JSON,
            422,
        ),
        (
            "v2 negative shape",
            "POST",
            v2,
            b'{"inputs": [{"name":"x","shape":[-1,4],"datatype":"FP64","data":[1,2,3,4]}]}',
            JSON,
            400,
        ),
        (
            "v2 string data",
            "POST",
            v2,
            b'{"inputs": [{"name":"x","shape":[1,4],"datatype":"FP64","data":["1","2","3","4"]}]}',
            JSON,
            422,
        ),
        (
            "v2 unknown output",
            "POST",
            v2,
            b'{"inputs": [{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}],'
            b'"outputs":[{"name":"z"}]}',
            JSON,
            422,
        ),
        (
            "v2 header length too big",
            "POST",
            v2,
            b'{"inputs": []}',
            {"content-type": "application/octet-stream", "inference-header-content-length": "999999"},
            400,
        ),
        (
            "v2 header length not a number",
            "POST",
            v2,
            b'{"inputs": []}',
            {"content-type": "application/octet-stream", "inference-header-content-length": "abc"},
            400,
        ),
    ]
    header = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":4}}]}'
    cases.append(
        (
            "v2 binary size mismatch",
            "POST",
            v2,
            header + b"\x00" * 4,
            {"content-type": "application/octet-stream", "inference-header-content-length": str(len(header))},
            400,
        )
    )
    return cases


CORPUS = _corpus()
# What answers each case: the function's error code, or API Gateway's own message for what never reaches a
# function (no route, or a body over its 10 MB payload limit).
EXPECTED_CODE: dict[str, str] = {
    "broken json": "invalid_json",
    "not json at all": "invalid_json",
    "empty body": "empty_body",
    "json null": "malformed",
    "json array": "malformed",
    "json string": "malformed",
    "json number": "malformed",
    "lone surrogate escape": "invalid_json",
    "invalid utf-8": "invalid_json",
    "form content type": "unsupported_media_type",
    "xml content type": "unsupported_media_type",
    "multipart": "unsupported_media_type",
    "text/plain": "unsupported_media_type",
    "deeply nested": "invalid_json",
    "deep objects": "invalid_json",
    "no instances key": "malformed",
    "instances is object": "malformed",
    "instances is string": "malformed",
    "instances is number": "malformed",
    "return_probabilities string": "malformed",
    "inputs wrong type": "malformed",
    "empty batch": "empty_batch",
    "empty row": "wrong_feature_count",
    "flat row": "wrong_shape",
    "3d": "wrong_shape",
    "ragged": "wrong_shape",
    "too few features": "wrong_feature_count",
    "too many features": "wrong_feature_count",
    "strings for numbers": "non_numeric",
    "numeric strings": "non_numeric",
    "nulls": "non_numeric",
    "booleans": "non_numeric",
    "objects in row": "non_numeric",
    "NaN": "non_finite",
    "Infinity": "non_finite",
    "-Infinity": "non_finite",
    "huge float": "non_finite",
    "huge int": "invalid_json",
    "wrong feature names": "wrong_features",
    "missing feature": "wrong_features",
    "columns wrong names": "wrong_features",
    "columns ragged": "wrong_shape",
    "mixed rows": "wrong_features",
    "batch over limit": "batch_too_large",
    "body over 5 MB": "body_too_large",
    "body over 10 MB": "gateway: Request Entity Too Large",
    "unknown model": "model_not_found",  # the pool answers every name it has not got
    "unknown version": "version_not_found",
    "version zero": "version_not_found",
    "negative version": "version_not_found",
    "version not a number": "version_not_found",
    "huge version": "version_not_found",
    "traversal in name": "route_not_found",  # the pool's catch-all takes it; no handler route matches
    "encoded traversal": "model_not_found",
    "traversal in version": "version_not_found",
    "unknown route under model": "route_not_found",
    "unknown top route": "gateway: Not Found",
    "GET on predict": "method_not_allowed",
    "PUT on predict": "method_not_allowed",
    "DELETE on predict": "method_not_allowed",
    "PATCH on infer": "method_not_allowed",
    "v2 empty inputs": "malformed",
    "v2 inputs not list": "malformed",
    "v2 bytes datatype": "unsupported_datatype",
    "v2 shape mismatch": "wrong_shape",
    "v2 negative shape": "malformed",
    "v2 string data": "non_numeric",
    "v2 unknown output": "unknown_output",
    "v2 header length too big": "malformed",
    "v2 header length not a number": "malformed",
    "v2 binary size mismatch": "malformed",
}


def test_corpus_is_large_enough_and_every_case_says_what_answers_it() -> None:
    assert len(CORPUS) >= 60
    assert set(EXPECTED_CODE) == {case[0] for case in CORPUS}


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_request_gets_a_documented_4xx(running: RunningPlatform, case) -> None:
    _, method, path, body, headers, status = case
    # http.client sends the path exactly as written (requests would resolve "..").
    host, port = running.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    text = response.read()
    connection.close()
    assert response.status == status, text[:300]
    document = json.loads(text)
    expected = EXPECTED_CODE[case[0]]
    if expected.startswith("gateway: "):  # API Gateway's answer: {"message": ...}, no function involved
        assert document == {"message": expected.removeprefix("gateway: ")}, document
    else:  # the function's answer: the documented error body with this code
        assert set(document) == {"error", "code"} and document["error"], document
        assert document["code"] == expected, document


def test_platform_still_serves_after_the_corpus(running: RunningPlatform) -> None:
    response = requests.post(f"{running.url}/models/iris/predict", json={"instances": [ROW]}, timeout=60)
    assert response.status_code == 200


def test_data_plane_rejects_calls_without_the_configured_key(running: RunningPlatform, tmp_path) -> None:
    from local_platform.dataplane import DataPlane
    from local_platform.frontend import DataPlaneServer

    key = secrets.token_urlsafe(24)  # generated: no key is written in the code
    plane = running.platform.server.plane
    guarded = DataPlane(
        plane.emulator_url,
        plane.api_id,
        plane.package_bucket,
        tmp_path,
        plane.runtime_dir,
        api_key=key,
    )
    with DataPlaneServer(guarded) as server:
        url = f"{server.url}/models/iris/predict"
        assert requests.post(url, json={"instances": [ROW]}, timeout=60).status_code == 401
        wrong = requests.post(
            url, json={"instances": [ROW]}, headers={"authorization": "Bearer nope"}, timeout=60
        )
        assert wrong.status_code == 401 and wrong.json() == {"message": "Unauthorized"}
        ok = requests.post(
            url, json={"instances": [ROW]}, headers={"authorization": f"Bearer {key}"}, timeout=60
        )
        assert ok.status_code == 200
        assert (
            requests.post(url, json={"instances": [ROW]}, headers={"x-api-key": key}, timeout=60).status_code
            == 200
        )
