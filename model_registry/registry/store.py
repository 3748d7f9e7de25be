"""The DynamoDB registry store.

One table, partition key ``model_name``, sort key ``version``. Version 0 of each model is its summary
item (latest version number, timestamps); versions 1..n are the version records. A registration
writes the summary and the new version in one transaction, conditional on the latest number it
read, so concurrent registrations never get the same number, never overwrite each other and leave
no holes.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from model_registry.core import contract
from model_registry.core.errors import (
    ConflictError,
    DependencyUnavailable,
    InvalidInput,
    ModelNotFound,
    RegistryError,
    VersionNotFound,
)
from model_registry.core.records import (
    STATUS_ARCHIVED,
    ModelVersion,
    OptimizedArtifact,
    TrafficPolicy,
    utc_now,
    validate_model_name,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def _to_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def _from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


# Outcomes of conditional writes: the callers handle them (a lost race, a held lock).
CONDITION_CODES = {
    "ConditionalCheckFailedException",
    "TransactionCanceledException",
    "TransactionConflictException",
}


@contextmanager
def _dependency(what: str) -> Iterator[None]:
    """Turn every AWS failure but a failed condition into :class:`DependencyUnavailable` (503, retry):
    throttling, a missing table, and also a denial (an IAM or KMS AccessDenied right after an apply,
    while the role's policy propagates), which would otherwise escape a cold start and crash it."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in CONDITION_CODES:
            raise
        if code in RETRYABLE_CODES or code == "ResourceNotFoundException":
            raise DependencyUnavailable(f"model registry unavailable ({what}: {code}); retry later") from exc
        message = exc.response.get("Error", {}).get("Message", "")
        raise DependencyUnavailable(
            f"model registry refused the request ({what}: {code}: {message}); "
            "check the caller's permissions; retry later"
        ) from exc
    except BotoCoreError as exc:
        raise DependencyUnavailable(f"model registry unreachable ({what}: {exc}); retry later") from exc


@dataclass(frozen=True)
class ModelSummary:
    """One model as listed by :meth:`RegistryStore.list_models`, with its pooled traffic policy."""

    model_name: str
    latest_version: int
    created_at: str
    updated_at: str
    policy: TrafficPolicy = field(default_factory=TrafficPolicy)
    onnx_versions: frozenset[int] = frozenset()  # versions with a compiled ONNX form (the pool's format)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ModelSummary:
        return cls(
            model_name=item[contract.PARTITION_KEY],
            latest_version=int(item["latest_version"]),
            created_at=item.get("created_at", ""),
            updated_at=item.get("updated_at", ""),
            policy=TrafficPolicy(
                stable=int(item["traffic_stable"]) if item.get("traffic_stable") else None,
                canary=int(item["traffic_canary"]) if item.get("traffic_canary") else None,
                canary_weight=float(item.get("traffic_canary_weight", 0)),
                revision=int(item.get("traffic_revision", 0)),
            ),
            onnx_versions=frozenset(int(v) for v in item.get("onnx_versions", ())),
        )

    @property
    def serving_version(self) -> int:
        """The version unversioned requests get outside a canary: the policy's stable version, else the
        latest (models registered before policies existed)."""
        return self.policy.stable or self.latest_version


@dataclass(frozen=True)
class ModelPage:
    """One page of models by name; ``next_token`` (the last name) fetches the next, None at the end."""

    models: list[ModelSummary]
    next_token: str | None


# Listing pages: DynamoDB returns at most 1 MB per query; 1,000 summaries are well under it.
MAX_PAGE_SIZE = 1000


class RegistryStore:
    """Model versions in DynamoDB, reached through an injected boto3 client."""

    def __init__(self, table_name: str, dynamodb_client: Any, *, max_attempts: int = 40) -> None:
        self.table_name = table_name
        self._ddb = dynamodb_client
        self._max_attempts = max_attempts

    def _key(self, model_name: str, version: int) -> dict[str, Any]:
        return _to_ddb({contract.PARTITION_KEY: model_name, contract.SORT_KEY: version})

    def _summary(self, model_name: str) -> dict[str, Any] | None:
        with _dependency("get summary"):
            response = self._ddb.get_item(
                TableName=self.table_name,
                Key=self._key(model_name, contract.SUMMARY_SORT_KEY),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return _from_ddb(item) if item else None

    def register(self, record: ModelVersion) -> ModelVersion:
        """Store ``record`` under the next free version number and return it with that number."""
        validate_model_name(record.model_name)
        for attempt in range(self._max_attempts):
            summary = self._summary(record.model_name)
            latest = int(summary["latest_version"]) if summary else 0
            new = replace(
                record,
                version=latest + 1,
                created_at=record.created_at or utc_now(),
                registration_id=uuid.uuid4().hex,
            )
            if self._try_commit(new, latest) and self._is_own(new):
                return new
            # Lost the race for this number: back off with jitter and read the new latest.
            time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * random.random())
        raise ConflictError(
            f"could not allocate a version for {record.model_name!r} after {self._max_attempts} attempts"
        )

    def _try_commit(self, record: ModelVersion, expected_latest: int) -> bool:
        pk, sk = contract.PARTITION_KEY, contract.SORT_KEY
        now = record.created_at
        summary_update = {
            "Update": {
                "TableName": self.table_name,
                "Key": self._key(record.model_name, contract.SUMMARY_SORT_KEY),
                "UpdateExpression": "SET latest_version = :new, updated_at = :now, "
                "created_at = if_not_exists(created_at, :now), #catalog = :catalog, "
                # the first version is what the pooled tier serves until a rollout moves it
                "traffic_stable = if_not_exists(traffic_stable, :new)"
                + (" ADD onnx_versions :onnx" if record.optimized is not None else ""),
                "ConditionExpression": "attribute_not_exists(#pk) OR latest_version = :expected",
                "ExpressionAttributeNames": {"#pk": pk, "#catalog": contract.CATALOG_KEY},
                "ExpressionAttributeValues": _to_ddb(
                    {
                        ":new": record.version,
                        ":now": now,
                        ":expected": expected_latest,
                        ":catalog": contract.CATALOG_VALUE,
                        **({":onnx": {record.version}} if record.optimized is not None else {}),
                    }
                ),
            }
        }
        version_put = {
            "Put": {
                "TableName": self.table_name,
                "Item": _to_ddb(record.to_item()),
                "ConditionExpression": "attribute_not_exists(#pk) AND attribute_not_exists(#sk)",
                "ExpressionAttributeNames": {"#pk": pk, "#sk": sk},
            }
        }
        try:
            with _dependency("register"):
                self._ddb.transact_write_items(TransactItems=[summary_update, version_put])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {
                "TransactionCanceledException",
                "ConditionalCheckFailedException",
                "TransactionConflictException",
            }:
                return False
            raise
        return True

    def _is_own(self, record: ModelVersion) -> bool:
        # DynamoDB transactions are isolated; some emulators' are not. Reading the item back costs one
        # GetItem and turns a lost race there into a retry instead of a silently overwritten version.
        with _dependency("confirm registration"):
            response = self._ddb.get_item(
                TableName=self.table_name,
                Key=self._key(record.model_name, record.version),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return bool(item) and _from_ddb(item).get("registration_id") == record.registration_id

    def get_version(self, model_name: str, version: int) -> ModelVersion:
        """One version record; :class:`ModelNotFound` or :class:`VersionNotFound` when absent."""
        validate_model_name(model_name)
        if version < 1:
            raise VersionNotFound(f"model {model_name!r} has no version {version}")
        with _dependency("get version"):
            response = self._ddb.get_item(
                TableName=self.table_name, Key=self._key(model_name, version), ConsistentRead=True
            )
        item = response.get("Item")
        if item:
            return ModelVersion.from_item(_from_ddb(item))
        if self._summary(model_name) is None:
            raise ModelNotFound(f"model {model_name!r} is not registered")
        raise VersionNotFound(f"model {model_name!r} has no version {version}")

    def latest_version(self, model_name: str) -> ModelVersion:
        """The newest registered version of a model."""
        summary = self._summary(model_name)
        if summary is None:
            raise ModelNotFound(f"model {model_name!r} is not registered")
        return self.get_version(model_name, int(summary["latest_version"]))

    def list_versions(self, model_name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        """All versions of a model, newest first."""
        validate_model_name(model_name)
        records: list[ModelVersion] = []
        with _dependency("list versions"):
            paginator = self._ddb.get_paginator("query")
            for page in paginator.paginate(
                TableName=self.table_name,
                KeyConditionExpression="#pk = :name AND #sk > :zero",
                ExpressionAttributeNames={"#pk": contract.PARTITION_KEY, "#sk": contract.SORT_KEY},
                ExpressionAttributeValues=_to_ddb({":name": model_name, ":zero": 0}),
                ScanIndexForward=False,
                ConsistentRead=True,
            ):
                records.extend(ModelVersion.from_item(_from_ddb(item)) for item in page["Items"])
        if not records and self._summary(model_name) is None:
            raise ModelNotFound(f"model {model_name!r} is not registered")
        if not include_archived:
            records = [r for r in records if r.status != STATUS_ARCHIVED]
        return records

    def summary(self, model_name: str, *, consistent: bool = True) -> ModelSummary:
        """A model's summary item: latest version and pooled traffic policy; :class:`ModelNotFound`."""
        validate_model_name(model_name)
        if consistent:
            item = self._summary(model_name)
        else:  # half the read cost, and what the pool's short policy cache tolerates anyway
            with _dependency("get summary"):
                response = self._ddb.get_item(
                    TableName=self.table_name, Key=self._key(model_name, contract.SUMMARY_SORT_KEY)
                )
            item = _from_ddb(response["Item"]) if response.get("Item") else None
        if item is None:
            raise ModelNotFound(f"model {model_name!r} is not registered")
        return ModelSummary.from_item(item)

    def page_models(self, limit: int = 100, next_token: str | None = None) -> ModelPage:
        """Up to ``limit`` models by name, after ``next_token``: one Query of the catalog index (a
        sparse index of the summary items), never a table scan."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
        condition = "#catalog = :catalog"
        names = {"#catalog": contract.CATALOG_KEY}
        values: dict[str, Any] = {":catalog": contract.CATALOG_VALUE}
        if next_token is not None:
            validate_model_name(next_token)
            condition += " AND #name > :after"
            names["#name"] = contract.PARTITION_KEY  # DynamoDB refuses names an expression does not use
            values[":after"] = next_token
        models: list[ModelSummary] = []
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": contract.CATALOG_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _to_ddb(values),
            "Limit": limit,
        }
        with _dependency("list models"):
            while len(models) < limit:
                response = self._ddb.query(**request)
                models.extend(ModelSummary.from_item(_from_ddb(item)) for item in response["Items"])
                if "LastEvaluatedKey" not in response:
                    return ModelPage(models, None)
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
                request["Limit"] = limit - len(models)
        return ModelPage(models, models[-1].model_name)

    def list_models(self) -> list[ModelSummary]:
        """Every registered model, by name (page after page of :meth:`page_models`)."""
        models: list[ModelSummary] = []
        token: str | None = None
        while True:
            page = self.page_models(MAX_PAGE_SIZE, token)
            models.extend(page.models)
            if page.next_token is None:
                return models
            token = page.next_token

    def set_policy(self, model_name: str, policy: TrafficPolicy, expected_revision: int) -> TrafficPolicy:
        """Store a pooled model's traffic policy if its revision is still ``expected_revision``; the
        stored policy (revision + 1). :class:`ConflictError` when someone changed it meanwhile."""
        validate_model_name(model_name)
        stored = replace(policy, revision=expected_revision + 1)
        try:
            with _dependency("set traffic policy"):
                self._ddb.update_item(
                    TableName=self.table_name,
                    Key=self._key(model_name, contract.SUMMARY_SORT_KEY),
                    UpdateExpression="SET traffic_stable = :stable, traffic_canary = :canary, "
                    "traffic_canary_weight = :weight, traffic_revision = :revision",
                    ConditionExpression="attribute_exists(#pk) AND "
                    "(attribute_not_exists(traffic_revision) OR traffic_revision = :expected)",
                    ExpressionAttributeNames={"#pk": contract.PARTITION_KEY},
                    ExpressionAttributeValues=_to_ddb(
                        {
                            ":stable": stored.stable or 0,
                            ":canary": stored.canary or 0,
                            ":weight": str(round(stored.canary_weight, 4)),
                            ":revision": stored.revision,
                            ":expected": expected_revision,
                        }
                    ),
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConflictError(
                    f"the traffic policy of {model_name!r} changed during this operation (another rollout?); "
                    "check `modelctl status` and retry"
                ) from exc
            raise
        return stored

    def archive_version(self, model_name: str, version: int) -> ModelVersion:
        """Mark a version archived (it stays readable; it is not deleted)."""
        record = self.get_version(model_name, version)
        self._set_attribute(model_name, version, "status", STATUS_ARCHIVED)
        return replace(record, status=STATUS_ARCHIVED)

    def set_optimized(self, model_name: str, version: int, optimized: OptimizedArtifact) -> ModelVersion:
        """Attach a validated optimized artifact to an existing version (the native one stays)."""
        record = self.get_version(model_name, version)
        self._set_attribute(model_name, version, "optimized", json.dumps(optimized.to_dict()))
        with _dependency("mark optimized"):  # the pool serves versions with an ONNX form
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(model_name, contract.SUMMARY_SORT_KEY),
                UpdateExpression="ADD onnx_versions :onnx",
                ExpressionAttributeValues=_to_ddb({":onnx": {version}}),
            )
        return replace(record, optimized=optimized)

    def _set_attribute(self, model_name: str, version: int, attribute: str, value: Any) -> None:
        """Set one attribute of an existing version item (never creates one)."""
        with _dependency(f"set {attribute}"):
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(model_name, version),
                UpdateExpression="SET #attribute = :value",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={"#attribute": attribute, "#pk": contract.PARTITION_KEY},
                ExpressionAttributeValues=_to_ddb({":value": value}),
            )


# --------------------------------------------------------------------------- rollout events and lock
# Rollout events live in the model's own partition under negative sort keys (-1, -2, ...), so a
# function scoped by dynamodb:LeadingKeys never sees another model's history either.


class RolloutJournal:
    """Rollout history and the per-model rollout lock, in the registry table."""

    def __init__(self, store: RegistryStore) -> None:
        self._store = store
        self._ddb = store._ddb
        self.table_name = store.table_name

    def record(self, model_name: str, event: dict[str, Any]) -> int:
        """Append one event; returns its sequence number."""
        key = self._store._key(model_name, contract.SUMMARY_SORT_KEY)
        for attempt in range(20):
            summary = self._store._summary(model_name)
            if summary is None:
                raise ModelNotFound(f"model {model_name!r} is not registered")
            latest = int(summary.get("latest_event", 0))
            item = {
                contract.PARTITION_KEY: model_name,
                contract.SORT_KEY: -(latest + 1),
                "event": json.dumps(event, default=str),
                "recorded_at": utc_now(),
            }
            try:
                with _dependency("record rollout event"):
                    self._ddb.transact_write_items(
                        TransactItems=[
                            {
                                "Update": {
                                    "TableName": self.table_name,
                                    "Key": key,
                                    "UpdateExpression": "SET latest_event = :new",
                                    "ConditionExpression": (
                                        "attribute_not_exists(latest_event) OR latest_event = :old"
                                    ),
                                    "ExpressionAttributeValues": _to_ddb(
                                        {":new": latest + 1, ":old": latest}
                                    ),
                                }
                            },
                            {
                                "Put": {
                                    "TableName": self.table_name,
                                    "Item": _to_ddb(item),
                                    "ConditionExpression": "attribute_not_exists(#sk)",
                                    "ExpressionAttributeNames": {"#sk": contract.SORT_KEY},
                                }
                            },
                        ]
                    )
                return latest + 1
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                time.sleep(0.02 * (attempt + 1) * random.random())
        raise ConflictError(f"could not record a rollout event for {model_name!r}")

    def events(self, model_name: str, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        with _dependency("rollout history"):
            response = self._ddb.query(
                TableName=self.table_name,
                KeyConditionExpression="#pk = :name AND #sk < :zero",
                ExpressionAttributeNames={"#pk": contract.PARTITION_KEY, "#sk": contract.SORT_KEY},
                ExpressionAttributeValues=_to_ddb({":name": model_name, ":zero": 0}),
                ScanIndexForward=True,  # ascending from the most negative key: newest first
                Limit=limit,
                ConsistentRead=True,
            )
        out = []
        for raw in response["Items"]:
            item = _from_ddb(raw)
            out.append(
                {
                    "sequence": -int(item[contract.SORT_KEY]),
                    "recorded_at": item["recorded_at"],
                    **json.loads(item["event"]),
                }
            )
        return out

    def acquire(self, model_name: str, owner: str, ttl_s: int = 300) -> None:
        """Take the model's rollout lock for ``ttl_s`` seconds (renew it while working: :meth:`renew`), or
        raise :class:`ConflictError` naming its holder. A lock past its expiry is taken over."""
        now = int(time.time())
        key = self._store._key(model_name, contract.SUMMARY_SORT_KEY)
        try:
            with _dependency("rollout lock"):
                self._ddb.update_item(
                    TableName=self.table_name,
                    Key=key,
                    UpdateExpression="SET rollout_lock = :lock",
                    ConditionExpression="attribute_exists(#pk) AND "
                    "(attribute_not_exists(rollout_lock) OR rollout_lock.expires_at < :now)",
                    ExpressionAttributeNames={"#pk": contract.PARTITION_KEY},
                    ExpressionAttributeValues=_to_ddb(
                        {
                            ":lock": {"owner": owner, "expires_at": now + ttl_s, "since": utc_now()},
                            ":now": now,
                        }
                    ),
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise self._held(model_name) from exc
        # Read back: an emulator without isolated conditional writes could have let two writers in.
        time.sleep(0.05)
        holder = (self._store._summary(model_name) or {}).get("rollout_lock") or {}
        if holder.get("owner") != owner:
            raise self._held(model_name)

    def renew(self, model_name: str, owner: str, ttl_s: int = 300) -> bool:
        """Extend the lock ``owner`` holds by ``ttl_s`` seconds from now; False if it is no longer theirs."""
        try:
            with _dependency("rollout lock renewal"):
                self._ddb.update_item(
                    TableName=self.table_name,
                    Key=self._store._key(model_name, contract.SUMMARY_SORT_KEY),
                    UpdateExpression="SET rollout_lock.expires_at = :expires",
                    ConditionExpression="rollout_lock.#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=_to_ddb(
                        {":expires": int(time.time()) + ttl_s, ":owner": owner}
                    ),
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def holder(self, model_name: str) -> dict[str, Any]:
        """The current lock (owner, expires_at, since), or an empty dict."""
        return dict((self._store._summary(model_name) or {}).get("rollout_lock") or {})

    def _held(self, model_name: str) -> RegistryError:
        summary = self._store._summary(model_name)
        if summary is None:
            return ModelNotFound(f"model {model_name!r} is not registered")
        lock = summary.get("rollout_lock") or {}
        return ConflictError(
            f"another rollout of {model_name!r} is in progress ({lock.get('owner', '?')} since "
            f"{lock.get('since', '?')}); nothing was changed"
        )

    def release(self, model_name: str, owner: str) -> None:
        with contextlib.suppress(ClientError), _dependency("rollout unlock"):
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._store._key(model_name, contract.SUMMARY_SORT_KEY),
                UpdateExpression="REMOVE rollout_lock",
                ConditionExpression="rollout_lock.#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues=_to_ddb({":owner": owner}),
            )
