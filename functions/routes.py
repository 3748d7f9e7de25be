"""Request paths served inside a model's function (powertools syntax), and 404/405 classification."""

from __future__ import annotations

import re

PREDICT = "/models/<name>/predict"
PREDICT_VERSION = "/models/<name>/versions/<version>/predict"
METADATA = "/models/<name>"
VERSION_METADATA = "/models/<name>/versions/<version>"
V2_INFER = "/v2/models/<name>/infer"
V2_INFER_VERSION = "/v2/models/<name>/versions/<version>/infer"
V2_METADATA = "/v2/models/<name>"
V2_METADATA_VERSION = "/v2/models/<name>/versions/<version>"
V2_READY = "/v2/models/<name>/ready"
V2_READY_VERSION = "/v2/models/<name>/versions/<version>/ready"
# Server-wide routes, answered by the pooled function (contract.json pool.server_routes).
MODELS = "/models"
V2_SERVER = "/v2"
V2_LIVE = "/v2/health/live"
V2_READY_SERVER = "/v2/health/ready"
V2_REPOSITORY_INDEX = "/v2/repository/index"
V2_EXTENSIONS = ["binary_tensor_data", "model_repository"]

METHODS: dict[str, str] = {
    PREDICT: "POST",
    PREDICT_VERSION: "POST",
    METADATA: "GET",
    VERSION_METADATA: "GET",
    V2_INFER: "POST",
    V2_INFER_VERSION: "POST",
    V2_METADATA: "GET",
    V2_METADATA_VERSION: "GET",
    V2_READY: "GET",
    V2_READY_VERSION: "GET",
    MODELS: "GET",
    V2_SERVER: "GET",
    V2_LIVE: "GET",
    V2_READY_SERVER: "GET",
    V2_REPOSITORY_INDEX: "POST",
}
_PATTERNS = [(re.compile("^" + re.sub(r"<\w+>", "[^/]+", p) + "$"), m) for p, m in METHODS.items()]


def classify_unmatched(method: str, path: str) -> tuple[int, str, str]:
    """Status, code and message for a request no route matched: 405 for a known path, else 404."""
    allowed = sorted({m for pattern, m in _PATTERNS if pattern.match(path)})
    if allowed:
        return 405, "method_not_allowed", f"{method} is not allowed on {path}; use {', '.join(allowed)}"
    return 404, "route_not_found", f"no route for {method} {path[:200]}"
