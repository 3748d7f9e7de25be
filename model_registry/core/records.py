"""The model version record and its (de)serialisation to DynamoDB items. Pure: no I/O."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from model_registry.core import contract
from model_registry.core.errors import InvalidName, InvalidTag

# Model names become DynamoDB keys, S3 prefixes, Lambda function names and URL path segments:
# lower-case letters, digits and dashes only, so nothing can inject into any of them.
MODEL_NAME_PATTERN = re.compile(contract.MODEL_NAME_PATTERN)
TAG_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:/=+@-]{1,128}$")
TAG_VALUE_MAX = 256
MAX_TAGS = 50

STATUS_REGISTERED = "registered"
STATUS_ARCHIVED = "archived"


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`InvalidName`."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        shown = (
            name if isinstance(name, str) and len(name) <= 60 else f"{str(name)[:40]}... ({len(name)} chars)"
        )
        raise InvalidName(
            f"invalid model name {shown!r}: use 1-48 lower-case letters, digits or dashes, "
            "starting and ending with a letter or digit"
        )
    return name


def validate_tags(tags: dict[str, str]) -> dict[str, str]:
    """Check tag keys and values; return them unchanged."""
    if len(tags) > MAX_TAGS:
        raise InvalidTag(f"too many tags ({len(tags)} > {MAX_TAGS})")
    for key, value in tags.items():
        if not TAG_KEY_PATTERN.fullmatch(key):
            raise InvalidTag(f"invalid tag key {key!r}: 1-128 characters of letters, digits and _.:/=+@-")
        if not isinstance(value, str) or len(value) > TAG_VALUE_MAX or any(ord(c) < 32 for c in value):
            raise InvalidTag(f"invalid value for tag {key!r}: at most {TAG_VALUE_MAX} printable characters")
    return tags


@dataclass(frozen=True)
class Signature:
    """What a model accepts and returns."""

    n_features: int
    feature_names: list[str] | None = None
    dtype: str = "float64"
    output_kind: str = "regression"  # "classification" or "regression"
    classes: list[Any] | None = None

    @property
    def is_classifier(self) -> bool:
        return self.output_kind == "classification"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            n_features=int(data["n_features"]),
            feature_names=list(data["feature_names"]) if data.get("feature_names") else None,
            dtype=data.get("dtype", "float64"),
            output_kind=data.get("output_kind", "regression"),
            classes=_plain(data.get("classes")) if data.get("classes") is not None else None,
        )


@dataclass(frozen=True)
class OptimizedArtifact:
    """A compiled serving form of a version (e.g. ONNX), kept next to the native artifact.

    Recorded only after its outputs matched the native model on a validation sample.
    """

    artifact_format: str
    s3_key: str
    sha256: str
    size_bytes: int
    validation_rows: int
    max_abs_diff: float
    native_batch1_us: float = 0.0  # median predict time of one row at registration, each form
    optimized_batch1_us: float = 0.0

    @property
    def speedup(self) -> float:
        """How many times faster the optimized form predicted one row at registration (0 if unmeasured)."""
        return self.native_batch1_us / self.optimized_batch1_us if self.optimized_batch1_us else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizedArtifact:
        return cls(
            artifact_format=str(data["artifact_format"]),
            s3_key=str(data["s3_key"]),
            sha256=str(data["sha256"]),
            size_bytes=int(data["size_bytes"]),
            validation_rows=int(data["validation_rows"]),
            max_abs_diff=float(data["max_abs_diff"]),
            native_batch1_us=float(data.get("native_batch1_us", 0.0)),
            optimized_batch1_us=float(data.get("optimized_batch1_us", 0.0)),
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    model_name: str
    version: int
    framework: str
    artifact_format: str
    s3_key: str
    sha256: str
    size_bytes: int
    signature: Signature
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    created_at: str = ""
    created_by: str = ""
    source_commit: str = ""
    status: str = STATUS_REGISTERED
    registration_id: str = ""  # unique per registration attempt: lets a writer confirm the item is its own
    optimized: OptimizedArtifact | None = None

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (resource-layer types: numbers as Decimal, nested JSON as strings)."""
        return {
            contract.PARTITION_KEY: self.model_name,
            contract.SORT_KEY: self.version,
            "framework": self.framework,
            "artifact_format": self.artifact_format,
            "s3_key": self.s3_key,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "signature": json.dumps(self.signature.to_dict()),
            "metrics": json.dumps(self.metrics),
            "tags": self.tags,
            "description": self.description,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "source_commit": self.source_commit,
            "status": self.status,
            "registration_id": self.registration_id,
            **({"optimized": json.dumps(self.optimized.to_dict())} if self.optimized else {}),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ModelVersion:
        """Parse a DynamoDB item written by :meth:`to_item`."""
        return cls(
            model_name=item[contract.PARTITION_KEY],
            version=int(item[contract.SORT_KEY]),
            framework=item["framework"],
            artifact_format=item["artifact_format"],
            s3_key=item["s3_key"],
            sha256=item["sha256"],
            size_bytes=int(item["size_bytes"]),
            signature=Signature.from_dict(json.loads(item["signature"])),
            metrics=json.loads(item.get("metrics") or "{}"),
            tags=dict(item.get("tags") or {}),
            description=item.get("description", ""),
            created_at=item.get("created_at", ""),
            created_by=item.get("created_by", ""),
            source_commit=item.get("source_commit", ""),
            status=item.get("status", STATUS_REGISTERED),
            registration_id=item.get("registration_id", ""),
            optimized=OptimizedArtifact.from_dict(json.loads(item["optimized"]))
            if item.get("optimized")
            else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view for the CLI and the metadata endpoints."""
        data = asdict(self)
        data["signature"] = self.signature.to_dict()
        return data


def utc_now() -> str:
    """ISO-8601 UTC timestamp with a Z suffix."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    """Turn Decimals from DynamoDB (and nested lists) back into ints/floats."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


@dataclass(frozen=True)
class TrafficPolicy:
    """Which versions of a pooled model answer unversioned requests: ``stable`` (None: the latest
    registered version) and optionally ``canary`` for ``canary_weight`` of them. Kept on the model's
    summary item in the registry; ``revision`` counts its changes (conditional writes)."""

    stable: int | None = None
    canary: int | None = None
    canary_weight: float = 0.0
    revision: int = 0

    def choose(self, draw: float, latest: int) -> int:
        """The version for one request, given a uniform ``draw`` in [0, 1) and the latest version."""
        if self.canary is not None and draw < self.canary_weight:
            return self.canary
        return self.stable if self.stable is not None else latest
