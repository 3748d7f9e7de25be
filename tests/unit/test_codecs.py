"""The request codecs directly, without a model or AWS: every input check with the code and status a
client sees, and V2 round trips (the handler-level and fuzzed cases are in tests/integration)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_registry.core.errors import InvalidInput
from model_registry.core.records import Signature
from model_registry.serving.codecs import (
    decode_predict_request,
    decode_v2_request,
    encode_v2_response,
    is_ascii_int,
    parse_ascii_int,
    split_binary_body,
)

IRIS = Signature(4, ["a", "b", "c", "d"], output_kind="classification", classes=[0, 1, 2])
ROW = [5.1, 3.5, 1.4, 0.2]


def _refused(call, code: str, status: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as refused:
        call()
    assert (refused.value.code, refused.value.status) == (code, status), refused.value.message


def test_predict_bodies_in_each_accepted_form() -> None:
    rows, proba = decode_predict_request({"instances": [ROW, ROW]}, IRIS, 10)
    assert rows.shape == (2, 4) and rows.dtype == np.float64 and proba is False
    by_name, _ = decode_predict_request({"instances": [dict(zip("abcd", ROW, strict=True))]}, IRIS, 10)
    columns, proba = decode_predict_request(
        {"inputs": {k: [v] for k, v in zip("abcd", ROW, strict=True)}, "return_probabilities": True}, IRIS, 10
    )
    assert by_name.tolist() == columns.tolist() == [ROW] and proba is True


@pytest.mark.parametrize(
    ("payload", "code", "status"),
    [
        ([ROW], "malformed", 400),
        ({"rows": [ROW]}, "malformed", 400),
        ({"instances": ROW[0]}, "malformed", 400),
        ({"instances": [ROW], "return_probabilities": "yes"}, "malformed", 400),
        ({"instances": []}, "empty_batch", 422),
        ({"instances": [ROW] * 11}, "batch_too_large", 413),
        ({"instances": [ROW[:3]]}, "wrong_feature_count", 422),
        ({"instances": [[*ROW[:3], float("nan")]]}, "non_finite", 422),
        ({"instances": [[*ROW[:3], "x"]]}, "non_numeric", 422),
        ({"instances": [[*ROW[:3], True]]}, "non_numeric", 422),
        ({"instances": [ROW, ROW[:2]]}, "wrong_shape", 422),  # ragged
        ({"instances": [{"a": 1, "b": 2, "c": 3}]}, "wrong_features", 422),
    ],
)
def test_predict_bodies_refused_with_their_code(payload: object, code: str, status: int) -> None:
    _refused(lambda: decode_predict_request(payload, IRIS, 10), code, status)


def test_v2_json_and_binary_tensors_decode_alike() -> None:
    as_json = {"id": "r1", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    decoded = decode_v2_request(as_json, b"", IRIS, 10)
    blob = struct.pack("<4d", *ROW)
    as_binary = {
        "inputs": [
            {"name": "x", "shape": [1, 4], "datatype": "FP64", "parameters": {"binary_data_size": 32}}
        ],
        "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
    }
    header = json.dumps(as_binary).encode()
    payload, tail = split_binary_body(header + blob, len(header))
    binary = decode_v2_request(payload, tail, IRIS, 10)
    assert decoded.features.tolist() == binary.features.tolist() == [ROW]
    assert (decoded.request_id, decoded.outputs, binary.outputs) == ("r1", ["predict"], ["predict_proba"])
    assert binary.binary_outputs == {"predict_proba"}
    per_feature = {
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
            for n, v in zip("abcd", ROW, strict=True)
        ]
    }
    assert decode_v2_request(per_feature, b"", IRIS, 10).features.tolist() == [ROW]


def _tensor(**fields: object) -> dict:
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW, **fields}]}


@pytest.mark.parametrize(
    ("payload", "binary", "code", "status"),
    [
        ({"inputs": []}, b"", "malformed", 400),
        (_tensor(shape=[1, True]), b"", "malformed", 400),  # a boolean is not a dimension
        (_tensor(shape=[1, -4]), b"", "malformed", 400),
        (_tensor(shape=[1, 1, 1, 1, 1, 1, 1, 1, 4]), b"", "malformed", 400),  # more than 8 dimensions
        (_tensor(shape=[10**7, 10**7]), b"", "wrong_shape", 422),  # over the 10M-value cap
        (_tensor(shape=[2, 4]), b"", "wrong_shape", 422),  # 4 values do not fill [2, 4]
        (_tensor(data=[ROW[:2], ROW[2:3]]), b"", "wrong_shape", 422),  # ragged
        (_tensor(parameters=[]), b"", "malformed", 400),
        ({**_tensor(), "id": 7}, b"", "malformed", 400),
        ({**_tensor(), "outputs": [{"name": "embedding"}]}, b"", "unknown_output", 422),
        ({"inputs": _tensor()["inputs"] * 2}, b"", "malformed", 400),  # the same tensor twice
        (_tensor(), b"\0" * 8, "malformed", 400),  # bytes no tensor claims
    ],
)
def test_v2_requests_refused_with_their_code(payload: dict, binary: bytes, code: str, status: int) -> None:
    _refused(lambda: decode_v2_request(payload, binary, IRIS, 10), code, status)


@given(st.text(max_size=30))
def test_ascii_ints_are_what_int_reads_the_same_way(text: str) -> None:
    if is_ascii_int(text):
        assert parse_ascii_int(text, "n") == int(text) >= 0
    else:
        _refused(lambda: parse_ascii_int(text, "n"), "malformed", 400)


def test_unicode_digits_and_huge_numbers_are_not_ints() -> None:
    assert not is_ascii_int("١٢") and not is_ascii_int("5" * 5000) and not is_ascii_int("")
    assert not is_ascii_int("-1") and not is_ascii_int("+1") and is_ascii_int("007")


def test_a_header_length_past_the_body_is_refused() -> None:
    _refused(lambda: split_binary_body(b"{}", 3), "malformed", 400)
    _refused(lambda: split_binary_body(b"{}", -1), "malformed", 400)


def test_v2_responses_in_json_and_binary() -> None:
    tensors = {"predict": np.array([0, 2]), "predict_proba": np.array([[0.9, 0.1], [0.2, 0.8]])}
    body, header_length = encode_v2_response("iris", "3", "r1", tensors, set())
    document = json.loads(body)
    assert header_length is None and document["id"] == "r1" and document["model_version"] == "3"
    assert document["outputs"][1] == {
        "name": "predict_proba",
        "shape": [2, 2],
        "datatype": "FP64",
        "data": [0.9, 0.1, 0.2, 0.8],
    }
    body, header_length = encode_v2_response("iris", "3", None, tensors, {"predict_proba"})
    assert header_length is not None
    proba = json.loads(body[:header_length])["outputs"][1]
    assert proba["parameters"] == {"binary_data_size": 32} and "data" not in proba
    assert np.frombuffer(body[header_length:], "<f8").tolist() == [0.9, 0.1, 0.2, 0.8]
