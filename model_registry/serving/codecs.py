"""Request and response codecs: JSON / Open Inference Protocol (V2) <-> numpy. Pure: no I/O.

Every check runs before the model sees anything; each failure raises :class:`InvalidInput` with the
HTTP status and machine-readable code the API documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_registry.core.errors import InvalidInput
from model_registry.core.records import Signature

MAX_BODY_BYTES = 5 * 1024 * 1024  # under Lambda's 6 MB synchronous payload limit

# Open Inference Protocol datatypes accepted as numeric model input.
V2_DTYPES: dict[str, np.dtype[Any]] = {
    "FP64": np.dtype("float64"),
    "FP32": np.dtype("float32"),
    "FP16": np.dtype("float16"),
    "INT64": np.dtype("int64"),
    "INT32": np.dtype("int32"),
    "INT16": np.dtype("int16"),
    "INT8": np.dtype("int8"),
    "UINT64": np.dtype("uint64"),
    "UINT32": np.dtype("uint32"),
    "UINT16": np.dtype("uint16"),
    "UINT8": np.dtype("uint8"),
}
NUMPY_TO_V2 = {v: k for k, v in V2_DTYPES.items()}
OUTPUT_PREDICT = "predict"
OUTPUT_PROBA = "predict_proba"


def _unprocessable(message: str, code: str) -> InvalidInput:
    return InvalidInput(message, code=code, status=422)


def parse_json(body: str | bytes | None) -> Any:
    """Parse a JSON body, mapping every way it can be broken to a 400/413."""
    if body is None or body == "" or body == b"":
        raise InvalidInput("request body is empty: send a JSON object", code="empty_body")
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"request body exceeds {MAX_BODY_BYTES} bytes", code="body_too_large", status=413)
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidInput("request body is nested too deeply", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}", code="invalid_json") from None


def _as_matrix(rows: Any, signature: Signature) -> np.ndarray:
    """Rows (lists of numbers) to a 2-D float array, refusing strings, booleans and ragged rows."""
    try:
        array = np.asarray(rows)
    except (ValueError, OverflowError) as exc:
        raise _unprocessable(f"instances must be rows of equal length: {exc}", "wrong_shape") from None
    if array.dtype.kind == "O" and array.ndim == 2 and all(_is_number(v) for v in array.flat):
        # Integers past int64 (JSON has no limit) give an object array: as floats they are numbers, or
        # too large for any float the model computes with.
        try:
            array = array.astype(np.float64)
        except OverflowError:
            raise _unprocessable("a feature value is too large for a 64-bit float", "non_finite") from None
    if array.dtype.kind not in "fiu":
        if array.dtype.kind == "b":
            raise _unprocessable("features must be numbers, not booleans", "non_numeric")
        if array.dtype.kind == "O" and array.ndim < 2:
            raise _unprocessable("instances must be rows of equal length", "wrong_shape")
        raise _unprocessable("features must be numbers (no strings, nulls or objects)", "non_numeric")
    if isinstance(rows, list) and _has_bool(rows):
        raise _unprocessable("features must be numbers, not booleans", "non_numeric")
    if array.ndim == 1 and array.size == signature.n_features and signature.n_features > 1:
        raise _unprocessable("instances must be a list of rows, e.g. [[1.0, 2.0, ...]]", "wrong_shape")
    if array.ndim != 2:
        raise _unprocessable(
            f"instances must be a 2-D list of rows, got {array.ndim} dimensions", "wrong_shape"
        )
    return array


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rows_from_objects(rows: list[Any], signature: Signature) -> list[list[Any]]:
    names = signature.feature_names
    if not names:
        raise _unprocessable("this model has no feature names: send rows as lists", "no_feature_names")
    expected = set(names)
    out = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _unprocessable(f"instance {index} mixes objects and lists", "wrong_shape")
        keys = set(row)
        if keys != expected:
            missing, unknown = sorted(expected - keys), sorted(keys - expected)
            detail = "; ".join(
                p
                for p in (f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else "")
                if p
            )
            raise _unprocessable(f"instance {index} has the wrong features: {detail}", "wrong_features")
        out.append([row[name] for name in names])
    return out


def _columns_to_rows(columns: Any, signature: Signature) -> list[list[Any]]:
    if not isinstance(columns, dict):
        raise InvalidInput('"inputs" must be an object of feature name -> list of values', code="malformed")
    names = signature.feature_names
    if not names:
        raise _unprocessable('this model has no feature names: send "instances" as lists', "no_feature_names")
    if set(columns) != set(names):
        missing, unknown = sorted(set(names) - set(columns)), sorted(set(columns) - set(names))
        raise _unprocessable(f"wrong features: missing {missing}, unknown {unknown}", "wrong_features")
    values = [columns[name] for name in names]
    if not all(isinstance(v, list) for v in values):
        raise _unprocessable('each feature in "inputs" must be a list of values', "wrong_shape")
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise _unprocessable("every feature column must have the same length", "wrong_shape")
    return [list(row) for row in zip(*values, strict=True)]


def check_batch(features: np.ndarray, signature: Signature, max_batch_size: int) -> np.ndarray:
    """Check shape, size and finiteness; return the array as float64 (or the model's dtype)."""
    if features.shape[0] == 0:
        raise _unprocessable("the batch is empty: send at least one instance", "empty_batch")
    if features.shape[0] > max_batch_size:
        raise InvalidInput(
            f"batch of {features.shape[0]} instances exceeds the limit of {max_batch_size}",
            code="batch_too_large",
            status=413,
        )
    if features.shape[1] != signature.n_features:
        raise _unprocessable(
            f"expected {signature.n_features} features per instance, got {features.shape[1]}",
            "wrong_feature_count",
        )
    try:
        converted = features.astype(np.float64, copy=False)
    except OverflowError:
        raise _unprocessable("a feature value is too large for a 64-bit float", "non_finite") from None
    if not np.isfinite(converted).all():
        raise _unprocessable("features must be finite numbers (no NaN or Infinity)", "non_finite")
    return converted


def decode_predict_request(
    payload: Any, signature: Signature, max_batch_size: int
) -> tuple[np.ndarray, bool]:
    """The ``/models/.../predict`` body to a feature matrix, plus whether probabilities are wanted."""
    if not isinstance(payload, dict):
        raise InvalidInput(
            'request body must be a JSON object with "instances" or "inputs"', code="malformed"
        )
    want_proba = payload.get("return_probabilities", False)
    if not isinstance(want_proba, bool):
        raise InvalidInput('"return_probabilities" must be true or false', code="malformed")
    if "instances" in payload:
        rows = payload["instances"]
    elif "inputs" in payload:
        rows = payload["inputs"]
        if isinstance(rows, dict):
            rows = _columns_to_rows(rows, signature)
    else:
        raise InvalidInput('request body needs "instances" (rows) or "inputs" (columns)', code="malformed")
    if not isinstance(rows, list):
        raise InvalidInput('"instances" must be a list of rows', code="malformed")
    if rows and isinstance(rows[0], dict):
        rows = _rows_from_objects(rows, signature)
    if not rows:
        raise _unprocessable("the batch is empty: send at least one instance", "empty_batch")
    if len(rows) > max_batch_size:  # before building a big array
        raise InvalidInput(
            f"batch of {len(rows)} instances exceeds the limit of {max_batch_size}",
            code="batch_too_large",
            status=413,
        )
    return check_batch(_as_matrix(rows, signature), signature, max_batch_size), want_proba


def to_jsonable(values: np.ndarray) -> list[Any]:
    """numpy predictions to plain JSON values."""
    return values.tolist()


# --------------------------------------------------------------------------- Open Inference Protocol (V2)


@dataclass(frozen=True)
class V2Request:
    """A decoded V2 inference request."""

    features: np.ndarray
    request_id: str | None
    outputs: list[str]
    binary_outputs: set[str]


def split_binary_body(body: bytes, header_length: int) -> tuple[Any, bytes]:
    """Split a V2 binary-extension body into its JSON header and the raw tensor bytes after it."""
    if header_length < 0 or header_length > len(body):
        raise InvalidInput("Inference-Header-Content-Length is larger than the body", code="malformed")
    return parse_json(body[:header_length]), body[header_length:]


# A request body is at most 6 MB (Lambda's synchronous payload limit): no tensor of more values can arrive.
MAX_TENSOR_VALUES = 10_000_000
MAX_TENSOR_DIMENSIONS = 8


def is_ascii_int(text: str, max_digits: int = 18) -> bool:
    """Whether ``text`` is a non-negative integer in at most ``max_digits`` ASCII digits (``str.isdigit``
    accepts Unicode digits that ``int`` refuses or reads differently, and ``int`` refuses strings over
    4,300 digits)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def parse_ascii_int(text: str, what: str, max_digits: int = 18) -> int:
    """``text`` as an integer (see :func:`is_ascii_int`), or a 400 naming ``what``."""
    if not is_ascii_int(text, max_digits):
        raise InvalidInput(
            f"{what} must be a non-negative integer of at most {max_digits} digits", code="malformed"
        )
    return int(text)


def _parameters(holder: dict[str, Any], what: str) -> dict[str, Any]:
    parameters = holder.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f'{what}: "parameters" must be an object', code="malformed")
    return parameters


def _shape(value: Any, name: str) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_TENSOR_DIMENSIONS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise InvalidInput(
            f"input {name!r}: shape must be a list of at most {MAX_TENSOR_DIMENSIONS} non-negative integers",
            code="malformed",
        )
    count = 1
    for dimension in value:  # Python integers: no int64 wrap-around
        count *= dimension
    # Each dimension too, or [0, 2**70] (no values) would still be a shape numpy cannot make.
    if count > MAX_TENSOR_VALUES or any(dimension > MAX_TENSOR_VALUES for dimension in value):
        raise _unprocessable(
            f"input {name!r}: shape {value} holds more values than a request can carry", "wrong_shape"
        )
    return value


def _numbers(data: list[Any], name: str, dtype: np.dtype[Any], shape: list[int]) -> np.ndarray:
    """JSON tensor data (flat, or nested in the tensor's shape) as an array of ``dtype``."""
    try:
        array = np.asarray(data)
    except (ValueError, OverflowError):  # ragged nesting
        raise _unprocessable(
            f"input {name!r}: data is ragged, not a tensor of shape {shape}", "wrong_shape"
        ) from None
    if array.ndim > 1 and list(array.shape) != shape:
        raise _unprocessable(
            f"input {name!r}: data of shape {list(array.shape)} is not shape {shape}", "wrong_shape"
        )
    flat = array.reshape(-1)
    if flat.dtype.kind == "O" and all(_is_number(v) for v in flat):  # integers past int64
        if dtype.kind != "f":
            raise _unprocessable(f"input {name!r}: a value does not fit {dtype.name}", "non_finite")
        try:
            flat = flat.astype(np.float64)
        except OverflowError:
            raise _unprocessable(f"input {name!r}: a value is too large for a float", "non_finite") from None
    if flat.dtype.kind not in "fiu" or _has_bool(data):
        raise _unprocessable(f"input {name!r}: data must be numbers", "non_numeric")
    if dtype.kind in "iu":
        if flat.dtype.kind == "f":
            raise _unprocessable(f"input {name!r}: {dtype.name} data must be integers", "non_numeric")
        info = np.iinfo(dtype)
        if flat.size and (flat.min() < info.min or flat.max() > info.max):
            raise _unprocessable(f"input {name!r}: a value does not fit {dtype.name}", "non_finite")
    return flat


def _has_bool(items: list[Any]) -> bool:
    """Whether nested JSON lists hold a boolean: numpy turns ``true`` among numbers into 1 (or 1.0), so
    they must be found before it converts (the type scan runs in C: about 20 ns a value)."""
    types = set(map(type, items))
    if bool in types:
        return True
    return list in types and any(_has_bool(item) for item in items if type(item) is list)


def _tensor_array(tensor: dict[str, Any], binary: bytes, offset: int) -> tuple[str, np.ndarray, int]:
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput('each input needs a "name" string', code="malformed")
    datatype = tensor.get("datatype")
    if datatype not in V2_DTYPES:
        raise _unprocessable(
            f"input {name!r}: datatype {datatype!r} is not a numeric type", "unsupported_datatype"
        )
    shape = _shape(tensor.get("shape"), name)
    dtype = V2_DTYPES[datatype]
    count = 1
    for dimension in shape:
        count *= dimension
    size = _parameters(tensor, f"input {name!r}").get("binary_data_size")
    if size is not None:
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size != count * dtype.itemsize
            or offset + size > len(binary)
        ):
            raise InvalidInput(
                f"input {name!r}: binary_data_size does not match shape and data", code="malformed"
            )
        array = np.frombuffer(binary, dtype=dtype.newbyteorder("<"), count=count, offset=offset)
        return name, array.reshape(shape), offset + size
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidInput(f'input {name!r}: "data" must be a list', code="malformed")
    flat = _numbers(data, name, dtype, shape)
    if flat.size != count:
        raise _unprocessable(f"input {name!r}: {flat.size} values do not fill shape {shape}", "wrong_shape")
    return name, flat.reshape(shape), offset


def decode_v2_request(payload: Any, binary: bytes, signature: Signature, max_batch_size: int) -> V2Request:
    """A V2 inference request (JSON, with optional binary tensors) to a feature matrix."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise InvalidInput('V2 request needs a non-empty "inputs" list of tensors', code="malformed")
    request_parameters = _parameters(payload, "the request")
    offset = 0
    arrays: list[tuple[str, np.ndarray]] = []
    for tensor in payload["inputs"]:
        if not isinstance(tensor, dict):
            raise InvalidInput("each input must be a tensor object", code="malformed")
        name, array, offset = _tensor_array(tensor, binary, offset)
        arrays.append((name, array))
    if offset != len(binary):
        raise InvalidInput("the binary tensors do not fill the body after the JSON header", code="malformed")
    names = [name for name, _ in arrays]
    if len(set(names)) != len(names):
        raise InvalidInput("input names must be unique: a tensor is given twice", code="malformed")
    if len(arrays) == 1:
        features = arrays[0][1]
        if features.ndim == 1:
            features = (
                features.reshape(1, -1) if features.size == signature.n_features else features.reshape(-1, 1)
            )
        if features.ndim != 2:
            raise _unprocessable(
                f"input tensor must be 2-D [batch, features], got shape {list(features.shape)}", "wrong_shape"
            )
    else:  # one tensor per feature, by name
        by_name = {name: a.reshape(-1) for name, a in arrays}
        feature_names = signature.feature_names or []
        if set(by_name) != set(feature_names):
            raise _unprocessable(
                "one tensor per feature must be named by the model's feature names", "wrong_features"
            )
        lengths = {a.size for a in by_name.values()}
        if len(lengths) != 1:
            raise _unprocessable("feature tensors must have the same length", "wrong_shape")
        features = np.column_stack([by_name[n] for n in feature_names])
    outputs, binary_outputs = _requested_outputs(payload, signature, request_parameters)
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput('"id" must be a string', code="malformed")
    return V2Request(
        features=check_batch(features, signature, max_batch_size),
        request_id=request_id,
        outputs=outputs,
        binary_outputs=binary_outputs,
    )


def _requested_outputs(
    payload: dict[str, Any], signature: Signature, request_parameters: dict[str, Any]
) -> tuple[list[str], set[str]]:
    """The output names a V2 request asks for (``predict`` by default) and those wanted in binary."""
    requested = payload.get("outputs") or []
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise InvalidInput('"outputs" must be a list of {"name": "<output name>"}', code="malformed")
    allowed = {OUTPUT_PREDICT, OUTPUT_PROBA} if signature.is_classifier else {OUTPUT_PREDICT}
    outputs = [o["name"] for o in requested] or [OUTPUT_PREDICT]
    unknown = [o for o in outputs if o not in allowed]
    if unknown:
        raise _unprocessable(
            f"unknown outputs {unknown}: this model offers {sorted(allowed)}", "unknown_output"
        )
    if len(set(outputs)) != len(outputs):
        raise InvalidInput("output names must be unique", code="malformed")
    default_binary = _flag(request_parameters, "binary_data_output", "the request")
    if not requested:
        return outputs, set(outputs) if default_binary else set()
    binary_outputs = set()
    for output in requested:
        what = f"output {output['name']!r}"
        if _flag(_parameters(output, what), "binary_data", what, default_binary):
            binary_outputs.add(output["name"])
    return outputs, binary_outputs


def _flag(parameters: dict[str, Any], key: str, what: str, default: bool = False) -> bool:
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"{what}: parameter {key!r} must be true or false", code="malformed")
    return value


def v2_datatype(array: np.ndarray) -> str:
    """The V2 datatype name of a numpy array (strings/objects as BYTES)."""
    return NUMPY_TO_V2.get(array.dtype, "BYTES")


def encode_v2_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    tensors: dict[str, np.ndarray],
    binary_outputs: set[str],
) -> tuple[bytes, int | None]:
    """A V2 response body; with binary outputs, the JSON header length for Inference-Header-Content-Length."""
    outputs = []
    blobs: list[bytes] = []
    for name, array in tensors.items():
        entry: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": v2_datatype(array)}
        if name in binary_outputs and entry["datatype"] != "BYTES":
            blob = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.reshape(-1).tolist()
        outputs.append(entry)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version, "outputs": outputs}
    if request_id is not None:
        document["id"] = request_id
    header = json.dumps(document).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)
