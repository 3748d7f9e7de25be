"""Bad input the handler has not seen: the classes of defect an outside corpus found (V2 tensors, numbers
in headers and paths, finite inputs that overflow inside a model, methods), and a property-based fuzzer
of the request codecs run in-process against the real handler. Zero 5xx is the assertion; every refusal
is a documented error body."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.models import ExampleModel
from local_platform.emulator import create_registry
from model_registry.core import aws
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from tests.handler_support import call, load_handler

pytestmark = pytest.mark.integration

# make test runs a fixed budget with a fixed seed; make bench runs more (FUZZ_EXAMPLES).
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
V2 = "/v2/models/iris/infer"
PREDICT = "/models/iris/predict"


@pytest.fixture(scope="module")
def iris(moto_url: str, examples: dict[str, ExampleModel]) -> Iterator[ModuleType]:
    settings_ = Settings(
        table_name="bad-input-registry",
        bucket_name="bad-input-artifacts",
        region="us-east-1",
        endpoint_url=moto_url,
    )
    create_registry(settings_)
    example = examples["iris"]
    RegistryService.from_settings(settings_).register(
        "iris", example.artifact, feature_names=example.feature_names, progress=False
    )
    with aws.environment({}):  # restores what load_handler sets
        yield load_handler(settings_, "iris", "1")


def _tensor(**overrides: Any) -> dict[str, Any]:
    return {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2], **overrides}


def _binary(header: dict[str, Any], tail: bytes, length: str | None = None) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + tail, {
        "content-type": "application/octet-stream",
        "inference-header-content-length": length if length is not None else str(len(head)),
    }


FLOAT_ROW = np.asarray([5.1, 3.5, 1.4, 0.2], dtype="<f8").tobytes()
CASES: list[tuple[str, str, str, Any, dict[str, str], int, str]] = [
    # 1. V2 tensor validation
    ("boolean dimension", "POST", V2, {"inputs": [_tensor(shape=[True, 4])]}, {}, 400, "malformed"),
    ("float dimension", "POST", V2, {"inputs": [_tensor(shape=[1.0, 4])]}, {}, 400, "malformed"),
    (
        "shape that wraps int64",
        "POST",
        V2,
        {"inputs": [_tensor(shape=[2**32, 2**32, 4])]},
        {},
        422,
        "wrong_shape",
    ),
    (
        "a zero beside a huge dimension",
        "POST",
        V2,
        {"inputs": [_tensor(shape=[0, 2**70], data=[])]},
        {},
        422,
        "wrong_shape",
    ),
    ("too many dimensions", "POST", V2, {"inputs": [_tensor(shape=[1] * 9 + [4])]}, {}, 400, "malformed"),
    (
        "ragged data",
        "POST",
        V2,
        {"inputs": [_tensor(shape=[2, 2], data=[[1, 2], [3]])]},
        {},
        422,
        "wrong_shape",
    ),
    (
        "nested data of another shape",
        "POST",
        V2,
        {"inputs": [_tensor(shape=[2, 2], data=[[1, 2, 3, 4]])]},
        {},
        422,
        "wrong_shape",
    ),
    ("data shorter than shape", "POST", V2, {"inputs": [_tensor(shape=[2, 4])]}, {}, 422, "wrong_shape"),
    (
        "request parameters a list",
        "POST",
        V2,
        {"inputs": [_tensor()], "parameters": []},
        {},
        400,
        "malformed",
    ),
    ("input parameters a string", "POST", V2, {"inputs": [_tensor(parameters="x")]}, {}, 400, "malformed"),
    (
        "output parameters a number",
        "POST",
        V2,
        {"inputs": [_tensor()], "outputs": [{"name": "predict", "parameters": 3}]},
        {},
        400,
        "malformed",
    ),
    (
        "binary_data not a boolean",
        "POST",
        V2,
        {"inputs": [_tensor()], "outputs": [{"name": "predict", "parameters": {"binary_data": "yes"}}]},
        {},
        400,
        "malformed",
    ),
    (
        "output name a number",
        "POST",
        V2,
        {"inputs": [_tensor()], "outputs": [{"name": 1}]},
        {},
        400,
        "malformed",
    ),
    (
        "input name missing",
        "POST",
        V2,
        {"inputs": [{"shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]},
        {},
        400,
        "malformed",
    ),
    (
        "the same feature twice",
        "POST",
        V2,
        {"inputs": [_tensor(name="a", shape=[1], data=[1.0]), _tensor(name="a", shape=[1], data=[2.0])]},
        {},
        400,
        "malformed",
    ),
    (
        "boolean among numbers (V2)",
        "POST",
        V2,
        {"inputs": [_tensor(data=[True, 3.5, 1.4, 0.2])]},
        {},
        422,
        "non_numeric",
    ),
    (
        "floats for an integer datatype",
        "POST",
        V2,
        {"inputs": [_tensor(datatype="INT32", data=[1.5, 2, 3, 4])]},
        {},
        422,
        "non_numeric",
    ),
    (
        "value outside INT8",
        "POST",
        V2,
        {"inputs": [_tensor(datatype="INT8", data=[300, 2, 3, 4])]},
        {},
        422,
        "non_finite",
    ),
    ("id a number", "POST", V2, {"id": 7, "inputs": [_tensor()]}, {}, 400, "malformed"),
    ("binary size a boolean", "POST", V2, None, {}, 400, "malformed"),  # body set below
    ("bytes after the binary tensors", "POST", V2, None, {}, 400, "malformed"),
    # 2. numbers in headers and paths
    ("header length in superscript digits", "POST", V2, None, {}, 400, "malformed"),
    ("header length of 5000 digits", "POST", V2, None, {}, 400, "malformed"),
    (
        "version in superscript digits",
        "POST",
        "/models/iris/versions/²/predict",
        {"instances": [[1, 2, 3, 4]]},
        {},
        404,
        "version_not_found",
    ),
    (
        "version in Arabic-Indic digits",
        "POST",
        "/models/iris/versions/\u0661/predict",
        {"instances": [[1, 2, 3, 4]]},
        {},
        404,
        "version_not_found",
    ),
    # 3. finite inputs that overflow inside the model (the scaler turns 1e308 into infinity)
    (
        "overflow in the scaler",
        "POST",
        PREDICT,
        {"instances": [[1e308, 1e308, -1e308, 1e308]]},
        {},
        422,
        "input_out_of_range",
    ),
    (
        "overflow in the scaler (V2)",
        "POST",
        V2,
        {"inputs": [_tensor(data=[1e308, 1e308, -1e308, 1e308])]},
        {},
        422,
        "input_out_of_range",
    ),
    (
        "overflow with probabilities",
        "POST",
        PREDICT,
        {"instances": [[1.7e308, 1, 1, 1]], "return_probabilities": True},
        {},
        422,
        "input_out_of_range",
    ),
    (
        "boolean among numbers (rows)",
        "POST",
        PREDICT,
        {"instances": [[True, 3.5, 1.4, 0.2]]},
        {},
        422,
        "non_numeric",
    ),
    # 5. methods on the metadata routes reach the function: 405, as the spec says
    ("DELETE model metadata", "DELETE", "/models/iris", None, {}, 405, "method_not_allowed"),
    ("HEAD model metadata", "HEAD", "/models/iris", None, {}, 405, "method_not_allowed"),
    ("POST V2 model metadata", "POST", "/v2/models/iris", {}, {}, 405, "method_not_allowed"),
]


def _raw(case_id: str) -> tuple[bytes, dict[str, str]] | None:
    """The bodies the table cannot write as JSON: the binary extension's."""
    header = {"inputs": [_tensor(data=None, parameters={"binary_data_size": 32})]}
    del header["inputs"][0]["data"]
    if case_id == "binary size a boolean":
        return _binary(
            {"inputs": [{**header["inputs"][0], "parameters": {"binary_data_size": True}}]}, FLOAT_ROW
        )
    if case_id == "bytes after the binary tensors":
        return _binary(header, FLOAT_ROW + b"\x00" * 8)
    if case_id == "header length in superscript digits":
        return _binary(header, FLOAT_ROW, length="²")
    if case_id == "header length of 5000 digits":
        return _binary(header, FLOAT_ROW, length="9" * 5000)
    return None


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_each_class_of_bad_input_gets_its_documented_4xx(iris: ModuleType, case) -> None:
    case_id, method, path, body, headers, status, code = case
    raw = _raw(case_id)
    if raw is not None:
        result = call(iris, method, path, raw=raw[0], headers=raw[1])
    else:
        result = call(iris, method, path, body, headers=headers)
    assert result.status == status, result.body[:300]
    document = json.loads(result.body)
    assert document["code"] == code and document["error"], document


def test_a_valid_binary_request_still_serves(iris: ModuleType, examples: dict[str, ExampleModel]) -> None:
    header = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "parameters": {"binary_data_size": 32}}]
    }
    body, headers = _binary(header, FLOAT_ROW)
    result = call(iris, "POST", V2, raw=body, headers=headers)
    assert result.status == 200, result.body
    expected = examples["iris"].estimator.predict(np.frombuffer(FLOAT_ROW, "<f8").reshape(1, 4)).tolist()
    assert json.loads(result.body)["outputs"][0]["data"] == expected


# --------------------------------------------------------------------------- the fuzzer
# Requests start valid and get zero to three of their parts replaced by something else, so the fuzzer
# reaches every check, not only the first one a random document fails.

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN, infinities and 1e308 included
    st.text(max_size=5),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)
NUMBERS = st.one_of(
    st.floats(min_value=-10, max_value=10),
    st.floats(width=64),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
)
JUNK: dict[str, st.SearchStrategy[Any]] = {
    "shape": st.one_of(
        st.lists(
            st.one_of(st.integers(-2, 6), st.integers(2**31, 2**70), st.booleans(), st.floats(0, 5)),
            max_size=10,
        ),
        JSON_VALUES,
    ),
    "data": st.one_of(
        st.lists(NUMBERS, max_size=12),
        st.lists(st.lists(NUMBERS, max_size=5), max_size=4),
        st.lists(st.lists(st.lists(NUMBERS, max_size=2), max_size=2), max_size=2),
        JSON_VALUES,
    ),
    "datatype": st.one_of(
        st.sampled_from(["INT64", "INT32", "INT8", "UINT8", "FP16", "BOOL", "BYTES", "fp64"]), JSON_SCALARS
    ),
    "name": st.one_of(st.sampled_from(["", "sepal length (cm)", "x"]), JSON_SCALARS),
    "parameters": st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {}, optional={"binary_data_size": st.one_of(st.integers(-4, 64), st.booleans(), JSON_SCALARS)}
        ),
    ),
    "output": st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {"name": st.one_of(st.sampled_from(["predict", "predict_proba"]), JSON_SCALARS)},
            optional={
                "parameters": st.one_of(JSON_VALUES, st.fixed_dictionaries({"binary_data": JSON_SCALARS}))
            },
        ),
    ),
    "request_parameters": st.one_of(JSON_VALUES, st.fixed_dictionaries({"binary_data_output": JSON_SCALARS})),
    "id": JSON_SCALARS,
    "inputs": JSON_VALUES,
}


@st.composite
def v2_requests(draw: st.DrawFn) -> dict[str, Any]:
    rows = draw(st.integers(1, 3))
    data = draw(st.lists(st.floats(min_value=0, max_value=8), min_size=4 * rows, max_size=4 * rows))
    tensor: dict[str, Any] = {
        "name": "x",
        "shape": [rows, 4],
        "datatype": draw(st.sampled_from(["FP64", "FP32"])),
        "data": data,
    }
    request: dict[str, Any] = {"inputs": [tensor]}
    if draw(st.booleans()):
        request["outputs"] = [
            {"name": "predict"},
            {"name": "predict_proba", "parameters": {"binary_data": draw(st.booleans())}},
        ]
    for _ in range(draw(st.integers(0, 3))):
        part = draw(st.sampled_from(sorted(JUNK)))
        value = draw(JUNK[part])
        if part in ("shape", "data", "datatype", "name", "parameters"):
            inputs = request["inputs"]
            target = draw(st.sampled_from(inputs)) if isinstance(inputs, list) and inputs else None
            if isinstance(target, dict):
                target[part] = value
        elif part == "output":
            outputs = request.setdefault("outputs", [])
            if isinstance(outputs, list):
                outputs.append(value)
        elif part == "request_parameters":
            request["parameters"] = value
        elif part == "inputs" and draw(st.booleans()):
            request["inputs"] = value
        elif part == "inputs" and isinstance(request["inputs"], list):
            request["inputs"].append({**tensor, "name": draw(JUNK["name"])})  # a second tensor
        else:
            request[part] = value
    return request


def _answered(result: Any, sent: Any) -> dict[str, Any]:
    """Every answer is a 2xx or a documented 4xx body: never a 5xx."""
    assert result.status < 500, (result.status, result.body[:500], repr(sent)[:2000])
    if result.status >= 400:
        document = json.loads(result.body)
        assert set(document) == {"error", "code"} and document["error"], document
        return document
    return {}


FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,  # a fixed seed: the same cases on every run, so a failure replays
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(request=v2_requests())
def test_fuzzed_v2_json_requests_never_get_a_server_error(iris: ModuleType, request: dict[str, Any]) -> None:
    _answered(call(iris, "POST", V2, request), request)


@FUZZ
@given(request=v2_requests(), tail=st.binary(max_size=64), length=st.one_of(st.none(), st.text(max_size=6)))
def test_fuzzed_v2_binary_requests_never_get_a_server_error(
    iris: ModuleType, request: dict[str, Any], tail: bytes, length: str | None
) -> None:
    body, headers = _binary(request, tail, length)
    _answered(call(iris, "POST", V2, raw=body, headers=headers), (body, headers))


@st.composite
def predict_bodies(draw: st.DrawFn) -> Any:
    rows = draw(
        st.lists(
            st.lists(st.floats(min_value=0, max_value=8), min_size=4, max_size=4), min_size=1, max_size=3
        )
    )
    body: dict[str, Any] = {"instances": rows}
    if draw(st.booleans()):
        body["return_probabilities"] = True
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["value", "row", "instances", "flag", "body"]))
        if where == "value":  # one feature of one of the valid rows
            row = rows[draw(st.integers(0, len(rows) - 1))]
            if isinstance(row, list) and len(row) == 4:
                row[draw(st.integers(0, 3))] = draw(st.one_of(NUMBERS, JSON_VALUES))
        elif where == "row":
            rows.append(draw(st.one_of(st.lists(NUMBERS, max_size=6), JSON_VALUES)))
        elif where == "instances":
            body["instances"] = draw(JSON_VALUES)
        elif where == "flag":
            body["return_probabilities"] = draw(JSON_SCALARS)
        else:
            return draw(st.one_of(JSON_VALUES, st.fixed_dictionaries({"inputs": JSON_VALUES})))
    return body


@FUZZ
@given(
    body=predict_bodies(),
    version=st.one_of(
        st.none(), st.text(min_size=1, max_size=12).filter(lambda v: "/" not in v and "?" not in v)
    ),
)
def test_fuzzed_predict_requests_never_get_a_server_error(
    iris: ModuleType, body: Any, version: str | None
) -> None:
    path = PREDICT if version is None else f"/models/iris/versions/{version}/predict"
    _answered(call(iris, "POST", path, body), (path, body))
