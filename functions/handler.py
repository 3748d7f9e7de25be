"""Lambda handler serving one model: versioned predict routes, metadata and the Open Inference Protocol.

Everything expensive happens at init (module import): settings, boto3 clients, registry lookup, artifact
fetch, sha256 check and model load. A request only decodes, validates, predicts and encodes.

The cyclic garbage collector is paused for the init phase: init allocates ~170k long-lived objects
(modules, classes, the model) and almost no cyclic garbage (~1k objects), so the collections it would
trigger are pure cost (~200 ms on a scikit-learn cold start). After init those objects are frozen
out of every later collection, and the collector runs as usual.
"""

from __future__ import annotations

import gc

gc.disable()

import base64
import json
import os
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import routes
from model_registry import __version__
from model_registry.core import contract
from model_registry.core.errors import DependencyUnavailable, InvalidInput, RegistryError
from model_registry.core.settings import Settings
from model_registry.registry.loading import ModelSource
from model_registry.serving.pool import DEFAULT_CACHE_FRACTION, ModelPool, cache_budget, check_page_size
from model_registry.serving.server import ModelServer, ServedModel, codecs, parse_pin, parse_version

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", contract.METRICS_SERVICE)
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", contract.METRICS_NAMESPACE)
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE)
app = APIGatewayHttpResolver()


def _tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")


if _tracing_enabled():  # the X-Ray SDK costs ~140 ms of cold start: import it only when tracing is on
    from aws_lambda_powertools import Tracer

    tracer: Any = Tracer()
else:
    tracer = None

SETTINGS = Settings.from_env()
MODEL_NAME = os.environ.get(contract.ENV_MODEL_NAME, "")
try:
    PIN = parse_pin(os.environ.get(contract.ENV_MODEL_VERSION))
    MISCONFIGURED: RegistryError | None = None
except RegistryError as exc:  # answered (500, counted) on every request instead of a failed import
    PIN, MISCONFIGURED = None, RegistryError(exc.message, code="misconfigured")
SERVER = ModelServer(
    ModelSource.from_settings(SETTINGS, profile="serving"),
    MODEL_NAME,
    PIN,
    cache_size=SETTINGS.cache_size,
)
if MISCONFIGURED is not None:
    SERVER.misconfigured(MISCONFIGURED)
# The pooled tier: no model of its own; any registered model with an ONNX form, by the path's name.
POOLED = os.environ.get(contract.ENV_POOL, "").lower() == "true"
POOL = (
    ModelPool(
        SERVER.service,
        cache_budget(
            int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")),
            float(os.environ.get(contract.ENV_POOL_CACHE_FRACTION, DEFAULT_CACHE_FRACTION)),
        ),
        policy_ttl_s=float(os.environ.get(contract.ENV_POOL_POLICY_TTL, "5")),
    )
    if POOLED
    else None
)
# Which function version answers, and the model version it pins: every server error is counted under
# both from init on, a 503 before any model loaded included, so a rollout's gate sees all of them.
VERSION_DIMENSIONS = contract.version_dimensions(
    MODEL_NAME,
    str(SERVER.pin) if SERVER.pin else os.environ.get(contract.ENV_MODEL_VERSION) or "latest",
    os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
)
# CloudWatch refuses an empty dimension value: the pool's per-request metrics are the pool's aggregate,
# under a name no model can have.
POOL_AGGREGATE = "(pool)"
metrics.set_default_dimensions(model=MODEL_NAME or POOL_AGGREGATE)
# A pooled server error before a model version was chosen (the registry down, say).
POOL_UNATTRIBUTED = contract.version_dimensions(
    POOL_AGGREGATE, "unknown", contract.POOL_METRICS_FUNCTION_VERSION
)
logger.append_keys(model_name=MODEL_NAME)
JSON_TYPES = ("application/json", "text/json")
ACCEPTED_TYPES = (*JSON_TYPES, "application/octet-stream")


def _segment(name: str) -> AbstractContextManager[Any]:
    return nullcontext() if tracer is None or tracer.disabled else tracer.provider.in_subsegment(name)


def _init() -> None:
    """Load the pinned model during the init phase; on failure requests answer 503 and retry. Nothing
    escapes: an exception here would fail the module import, and Lambda would answer every request with
    Runtime.ImportModuleError instead of the documented 503."""
    start = time.perf_counter()
    try:
        with _segment("load_model"):
            served = SERVER.load_pinned()
    except RegistryError as exc:
        logger.error("model load failed at init", extra={"error": exc.message, "code": exc.code})
        return
    except Exception as exc:  # a bug or an unexpected library error: serve 503s, retry on requests
        logger.exception("model load failed at init")
        SERVER.load_failed(DependencyUnavailable(f"model load failed: {type(exc).__name__}"))
        return
    logger.info(
        "model loaded",
        extra={
            "model_version": served.version,
            "load_ms": round((time.perf_counter() - start) * 1000, 1),
            "registry_ms": round(served.timings.registry_ms, 1),
            "fetch_ms": round(served.timings.fetch_ms, 1),
            "verify_ms": round(served.timings.verify_ms, 1),
            "deserialize_ms": round(served.timings.load_ms, 1),
        },
    )


try:
    if MISCONFIGURED is not None:
        logger.error("misconfigured: serving nothing", extra={"error": MISCONFIGURED.message})
    elif MODEL_NAME:
        _init()
finally:
    gc.freeze()
    gc.enable()
_pending_load_metric = SERVER.pinned is not None


def before_snapshot() -> None:
    """SnapStart: the snapshot of a version pinned to a model version must hold that model. Raising here
    fails the snapshot (the version goes Failed), instead of snapshotting an environment that would
    answer 503. The version Terraform publishes before any model is registered pins ``latest``: its
    snapshot is taken without a model, which then loads on the first request (and the first rollout
    replaces that version anyway)."""
    if MISCONFIGURED is not None:
        raise MISCONFIGURED
    if not MODEL_NAME or SERVER.pinned is not None:
        return
    try:
        SERVER.load_pinned()
    except RegistryError as exc:
        if SERVER.pin is not None:
            raise
        logger.warning("snapshot taken without a model", extra={"error": exc.message, "code": exc.code})


def _after_restore() -> None:
    """SnapStart: this environment was restored, not initialised; it did not load the model itself."""
    global _pending_load_metric
    _pending_load_metric = False
    logger.info(
        "restored from snapshot",
        extra={"model_version": SERVER.pinned.version if SERVER.pinned is not None else None},
    )


try:  # the Lambda runtime provides it from python3.12 on; without it SnapStart is not available
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:
    pass
else:
    register_before_snapshot(before_snapshot)
    register_after_restore(_after_restore)


# --------------------------------------------------------------------------- helpers


def _json(status: int, body: dict[str, Any], version: str | None = None) -> Response:
    headers = {contract.VERSION_HEADER: version} if version else None
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def _request_body() -> tuple[bytes | str | None, str]:
    event = app.current_event
    content_type = (event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type and not content_type.startswith(ACCEPTED_TYPES) and not content_type.endswith("+json"):
        raise InvalidInput(
            f"unsupported content type {content_type!r}: send application/json",
            code="unsupported_media_type",
            status=415,
        )
    body = event.body
    if body is not None and event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True), content_type
        except ValueError:
            raise InvalidInput("body is not valid base64", code="malformed") from None
    return body, content_type


def _server(name: str) -> ModelServer:
    """The request handler for model ``name``: this function's own, or the pool's for any model."""
    if POOL is not None:
        return POOL.server(name)
    SERVER.check_name(name)
    return SERVER


def _served(name: str, version: str | None) -> tuple[ModelServer, ServedModel]:
    requested = parse_version(version) if version is not None else None
    if POOL is None:
        server = _server(name)
        served = server.get(requested)
    else:
        chosen, summary = POOL.choose(name, requested)
        _pooled_request(name, chosen, canary_active=summary.policy.canary is not None)
        before = POOL.stats()
        server, served = POOL.server(name), POOL.get(name, chosen)
        after = POOL.stats()  # one request at a time per environment: the difference is this request's
        metrics.add_metric("PoolCacheHits", MetricUnit.Count, after.hits - before.hits)
        metrics.add_metric("PoolCacheMisses", MetricUnit.Count, after.misses - before.misses)
        metrics.add_metric("PoolEvictions", MetricUnit.Count, after.evictions - before.evictions)
    _label(served)
    return server, served


# A pooled request's model and version, for its metrics: (dimensions, counted per version?).
_pooled: dict[str, Any] = {}


def _pooled_request(name: str, version: int, *, canary_active: bool) -> None:
    """Note which model version answers this pooled request. While the model has a canary, count the
    request under that version's dimensions (the rollout gate's denominator; AWS/Lambda metrics cannot
    tell the pool's models apart); otherwise add no per-version metric (each is a billed custom metric)."""
    dimensions = contract.version_dimensions(name, str(version), contract.POOL_METRICS_FUNCTION_VERSION)
    _pooled.clear()
    _pooled.update(dimensions=dimensions, per_version=canary_active, start=time.perf_counter())
    if canary_active:
        with single_metric(
            name=contract.REQUESTS_METRIC,
            unit=MetricUnit.Count,
            value=1,
            namespace=NAMESPACE,
            default_dimensions=dimensions,
        ):
            pass


def _label(served: ServedModel) -> None:
    """Name the model version that answers in this request's log lines."""
    logger.append_keys(model_version=served.version)


def _count_server_error() -> None:
    """One server error of this function version (or, pooled, of the model version that answered), in
    its own EMF document: the per-request metrics keep the model as their only dimension, so versions and
    error codes add no custom metrics."""
    with single_metric(
        name=contract.SERVER_ERRORS_METRIC,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions=_pooled.get("dimensions", POOL_UNATTRIBUTED) if POOLED else VERSION_DIMENSIONS,
    ):
        pass


def _record_prediction(served: ServedModel, rows: int, start: float) -> None:
    global _pending_load_metric
    # Two metrics per request: rows and latency. Requests are AWS/Lambda Invocations.
    latency_ms = (time.perf_counter() - start) * 1000
    metrics.add_metric("PredictedRows", MetricUnit.Count, rows)
    metrics.add_metric("PredictLatency", MetricUnit.Milliseconds, latency_ms)
    if POOLED and _pooled.get("per_version"):  # the gate's p99 of a pooled canary
        with single_metric(
            name=contract.LATENCY_METRIC,
            unit=MetricUnit.Milliseconds,
            value=latency_ms,
            namespace=NAMESPACE,
            default_dimensions=_pooled["dimensions"],
        ):
            pass
    if _pending_load_metric and SERVER.pinned is not None:
        timings = SERVER.pinned.timings
        metrics.add_metric(
            "ModelLoadTime",
            MetricUnit.Milliseconds,
            timings.registry_ms + timings.fetch_ms + timings.verify_ms + timings.load_ms,
        )
        _pending_load_metric = False


# --------------------------------------------------------------------------- routes


@app.post(routes.PREDICT)
@app.post(routes.PREDICT_VERSION)
def predict(name: str, version: str | None = None) -> Response:
    start = time.perf_counter()
    server, served = _served(name, version)
    body, _ = _request_body()
    payload = codecs.parse_json(body)
    with _segment("predict"):
        result = server.predict(served, payload, SETTINGS.max_batch_size)
    _record_prediction(served, len(result["predictions"]), start)
    return _json(200, result, str(served.version))


@app.get(routes.METADATA)
def metadata(name: str) -> Response:
    server, served = _served(name, None)
    return _json(200, server.metadata(served), str(served.version))


@app.get(routes.VERSION_METADATA)
def version_metadata(name: str, version: str) -> Response:
    return _json(200, _server(name).version_metadata(parse_version(version)), version)


@app.post(routes.V2_INFER)
@app.post(routes.V2_INFER_VERSION)
def v2_infer(name: str, version: str | None = None) -> Response:
    start = time.perf_counter()
    server, served = _served(name, version)
    body, _ = _request_body()
    header_length = app.current_event.headers.get(contract.V2_HEADER_LENGTH.lower())
    if header_length is not None:
        raw = body.encode() if isinstance(body, str) else (body or b"")
        length = codecs.parse_ascii_int(header_length, contract.V2_HEADER_LENGTH)
        payload, binary = codecs.split_binary_body(raw, length)
    else:
        payload, binary = codecs.parse_json(body), b""
    request = codecs.decode_v2_request(payload, binary, served.record.signature, SETTINGS.max_batch_size)
    with _segment("predict"):
        tensors = server.infer_v2(served, request)
    out, json_length = codecs.encode_v2_response(
        server.model_name, str(served.version), request.request_id, tensors, request.binary_outputs
    )
    _record_prediction(served, int(request.features.shape[0]), start)
    headers = {contract.VERSION_HEADER: str(served.version)}
    if json_length is None:
        return Response(200, "application/json", out.decode(), headers)
    headers[contract.V2_HEADER_LENGTH] = str(json_length)
    return Response(200, "application/octet-stream", out, headers)


@app.get(routes.V2_METADATA)
@app.get(routes.V2_METADATA_VERSION)
def v2_metadata(name: str, version: str | None = None) -> Response:
    server, served = _served(name, version)
    return _json(200, server.v2_metadata(served), str(served.version))


@app.get(routes.V2_READY)
@app.get(routes.V2_READY_VERSION)
def v2_ready(name: str, version: str | None = None) -> Response:
    _, served = _served(name, version)
    return _json(200, {"name": name, "version": str(served.version), "ready": True}, str(served.version))


# --------------------------------------------------------------------------- server-wide routes (pooled)


def _pool() -> ModelPool:
    """The pool; outside the pooled function the server-wide routes do not exist (API Gateway routes
    them to the pool only)."""
    if POOL is None:
        event = app.current_event
        raise InvalidInput(
            f"no route for {event.request_context.http.method} {event.raw_path[:200]}",
            code="route_not_found",
            status=404,
        )
    return POOL


@app.get(routes.MODELS)
def list_models() -> Response:
    """``GET /models?limit=&next_token=``: registered models by name, a page at a time."""
    pool = _pool()
    params = app.current_event.query_string_parameters or {}
    # an empty next_token is refused, not read as the first page
    page = pool.source.store.page_models(check_page_size(params.get("limit")), params.get("next_token"))
    body: dict[str, Any] = {
        "models": [
            {
                "name": m.model_name,
                "latest_version": str(m.latest_version),
                "serving_version": str(m.serving_version),
                "canary_version": str(m.policy.canary) if m.policy.canary else None,
                "canary_weight": m.policy.canary_weight,
            }
            for m in page.models
        ],
        "next_token": page.next_token,
    }
    return _json(200, body)


@app.get(routes.V2_SERVER)
def v2_server_metadata() -> Response:
    """Open Inference Protocol server metadata."""
    _pool()
    return _json(
        200,
        {"name": contract.METRICS_SERVICE, "version": __version__, "extensions": routes.V2_EXTENSIONS},
    )


@app.get(routes.V2_LIVE)
def v2_live() -> Response:
    _pool()
    return _json(200, {"live": True})


@app.get(routes.V2_READY_SERVER)
def v2_server_ready() -> Response:
    """Ready when the registry answers: every registered model is then loadable on demand."""
    _pool().source.store.page_models(1)
    return _json(200, {"ready": True})


@app.post(routes.V2_REPOSITORY_INDEX)
def v2_repository_index() -> Response:
    """The model repository extension's index: every registered model, the version that serves it and
    whether this tier can serve it (an ONNX form), ``{"ready": true}`` for only the servable ones."""
    pool = _pool()
    body, _ = _request_body()
    request = codecs.parse_json(body) if body else {}
    if not isinstance(request, dict) or not isinstance(request.get("ready", False), bool):
        raise InvalidInput(
            'the body must be a JSON object with an optional boolean "ready"', code="malformed"
        )
    index = []
    for model in pool.source.store.list_models():
        version = model.serving_version
        ready = version in model.onnx_versions
        if request.get("ready") and not ready:
            continue
        entry = {
            "name": model.model_name,
            "version": str(version),
            "state": "READY" if ready else "UNAVAILABLE",
        }
        if not ready:
            entry["reason"] = "no ONNX form: register with --optimize, or give the model a dedicated function"
        index.append(entry)
    return Response(200, "application/json", index)


# --------------------------------------------------------------------------- errors


@app.exception_handler(RegistryError)
def registry_error(exc: RegistryError) -> Response:
    metrics.add_metric("Errors", MetricUnit.Count, 1)
    if exc.status >= 500:
        _count_server_error()
        logger.warning("request failed", extra={"code": exc.code, "error": exc.message})
    else:  # the code in the log, not in a metric name: one custom metric per error code would be billed
        logger.info("request refused", extra={"code": exc.code, "status": exc.status})
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    body: dict[str, Any] = {"error": exc.message, "code": exc.code}
    if exc.status == 503:
        body["retry"] = "the model or its registry is temporarily unavailable; retry after a few seconds"
    return Response(exc.status, "application/json", body, headers)


@app.not_found
def not_found(exc: Exception) -> Response:
    event = app.current_event
    status, code, message = routes.classify_unmatched(event.request_context.http.method, event.raw_path)
    metrics.add_metric("Errors", MetricUnit.Count, 1)
    return Response(status, "application/json", {"error": message, "code": code})


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    # A bug or a model that raised on valid input: answer, log the trace, keep the environment alive.
    logger.exception("unhandled error", extra={"code": "prediction_failed"})
    metrics.add_metric("Errors", MetricUnit.Count, 1)
    _count_server_error()
    return Response(
        500,
        "application/json",
        {"error": f"prediction failed: {type(exc).__name__}", "code": "prediction_failed"},
    )


# --------------------------------------------------------------------------- the hot route

_PREDICT_PATH = f"/models/{MODEL_NAME}/predict"


def predict_fast(event: dict[str, Any]) -> dict[str, Any] | None:
    """``POST /models/<this model>/predict`` with a JSON body, answered without the resolver's generic
    routing and response building (about 90 µs of a warm request); None hands the request to the
    resolver, which stays the one router for every route and every error.

    Same functions, same response as the ``predict`` route: tests/integration/test_handler.py holds the
    two byte for byte equal.
    """
    served = SERVER.pinned
    if served is None or event.get("rawPath") != _PREDICT_PATH or event.get("isBase64Encoded"):
        return None
    headers = event.get("headers") or {}
    if headers.get("content-type", "application/json").split(";")[0].strip().lower() not in JSON_TYPES:
        return None
    if event.get("requestContext", {}).get("http", {}).get("method") != "POST":
        return None
    start = time.perf_counter()
    try:
        result = SERVER.predict(served, codecs.parse_json(event.get("body")), SETTINGS.max_batch_size)
    except Exception:
        return None  # the resolver answers it again, with the documented error body and metrics
    version = str(served.version)
    _label(served)
    _record_prediction(served, len(result["predictions"]), start)
    return {
        "statusCode": 200,
        "body": json.dumps(result, separators=(",", ":")),
        "isBase64Encoded": False,
        "headers": {"Content-Type": "application/json", contract.VERSION_HEADER: version},
        "cookies": [],
    }


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (API Gateway HTTP API, payload format 2.0)."""
    # Requests are counted by AWS/Lambda Invocations (per version and alias); errors and predictions here.
    _pooled.clear()
    fast = predict_fast(event)
    if fast is not None:
        return fast
    if contract.ACTIVATION_EVENT_KEY in event:  # a rollout re-activating this version: nothing to do
        return {"activated": True, "function_version": VERSION_DIMENSIONS["function_version"]}
    return app.resolve(event, context)
