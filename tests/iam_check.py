"""Check recorded AWS calls against the policy documents in iam/.

The library logs every call its clients make when MODEL_PLATFORM_AWS_CALL_LOG is set (service,
operation, parameters). Each call becomes the IAM actions it needs on the resources it names, with the
condition keys it carries (dynamodb:LeadingKeys, s3:prefix, and kms:ViaService for the KMS use the
storage services make on the caller's behalf), and those are evaluated against the actor's document.
moto's policy evaluator supports only StringEquals conditions, so the evaluation is written here, for
the operators the documents use; an unknown operator fails closed.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from model_registry.core import contract

IAM_DIR = Path(__file__).resolve().parents[1] / "iam"


@dataclass(frozen=True)
class Account:
    """Where the recorded calls went: partition, region, account, and the platform's key."""

    region: str = "us-east-1"
    account_id: str = "123456789012"
    partition: str = "aws"
    dns_suffix: str = "amazonaws.com"
    kms_key_arn: str = ""


@dataclass(frozen=True)
class Need:
    """One permission a call needs."""

    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        context = f" with {self.context}" if self.context else ""
        return f"{self.action} on {self.resource}{context}"


def render(document: str, **values: str) -> dict[str, Any]:
    """An iam/ document with its ${...} placeholders filled in (the syntax Terraform's templatefile uses)."""
    return json.loads(Template((IAM_DIR / document).read_text()).substitute(values))


def read_calls(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def _value(attribute: dict[str, Any]) -> str:
    return str(next(iter(attribute.values())))  # {"S": "iris"} -> "iris"


def _query_partition(params: dict[str, Any]) -> list[str]:
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")):
        if names.get(left, left) == contract.PARTITION_KEY and right in values:
            return [_value(values[right])]
    return []


def _dynamodb(operation: str, params: dict[str, Any], account: Account) -> list[Need]:
    def table(name: str) -> str:
        return f"arn:{account.partition}:dynamodb:{account.region}:{account.account_id}:table/{name}"

    def keyed(action: str, item: dict[str, Any]) -> Need:
        key = item.get("Key") or item.get("Item") or {}
        leading = [_value(key[contract.PARTITION_KEY])] if contract.PARTITION_KEY in key else []
        return Need(action, table(item["TableName"]), {"dynamodb:LeadingKeys": leading})

    if operation == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            keyed(f"dynamodb:{kinds[kind]}", body)
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if operation == "Query":
        # A query of an index needs the permission on the index's ARN, not the table's
        # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/iam-policy-specific-table-indexes.html).
        resource = table(params["TableName"])
        if params.get("IndexName"):
            resource += f"/index/{params['IndexName']}"
        return [Need("dynamodb:Query", resource, {"dynamodb:LeadingKeys": _query_partition(params)})]
    if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
        return [keyed(f"dynamodb:{operation}", params)]
    return [Need(f"dynamodb:{operation}", table(params["TableName"]))]


_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
}


def _s3(operation: str, params: dict[str, Any], account: Account) -> list[Need]:
    bucket = f"arn:{account.partition}:s3:::{params['Bucket']}"
    if operation in _S3_ACTIONS:
        return [Need(_S3_ACTIONS[operation], f"{bucket}/{params['Key']}")]
    if operation in ("ListObjectsV2", "ListObjects", "HeadBucket"):
        return [Need("s3:ListBucket", bucket, {"s3:prefix": [params.get("Prefix", "")]})]
    return [Need(f"s3:{operation}", bucket)]


def _lambda(operation: str, params: dict[str, Any], account: Account) -> list[Need]:
    name = params.get("FunctionName") or params.get("Resource", "")
    name = name.split(":function:")[-1]
    name, _, qualifier = name.partition(":")
    qualifier = params.get("Qualifier") or qualifier
    arn = f"arn:{account.partition}:lambda:{account.region}:{account.account_id}:function:{name}"
    action = {"Invoke": "lambda:InvokeFunction"}.get(operation, f"lambda:{operation}")
    return [Need(action, f"{arn}:{qualifier}" if qualifier else arn)]


# What the storage services do with the platform key on the caller's behalf, with the caller's permissions.
_KMS_BY_SERVICE = {
    ("s3", "GetObject"): "kms:Decrypt",
    ("s3", "HeadObject"): "kms:Decrypt",
    ("s3", "PutObject"): "kms:GenerateDataKey",
    ("s3", "CreateMultipartUpload"): "kms:GenerateDataKey",
    ("lambda", "GetFunctionConfiguration"): "kms:Decrypt",  # the CMK-encrypted environment
}


def needs(call: dict[str, Any], account: Account) -> list[Need]:
    """The permissions one recorded call needs."""
    service, operation, params = call["service"], call["operation"], call["params"]
    if service == "dynamodb":
        found = _dynamodb(operation, params, account)
        kms = "kms:Decrypt"
    elif service == "s3":
        found, kms = _s3(operation, params, account), _KMS_BY_SERVICE.get((service, operation))
    elif service == "lambda":
        found, kms = _lambda(operation, params, account), _KMS_BY_SERVICE.get((service, operation))
    elif service == "monitoring":
        found, kms = [Need(f"cloudwatch:{operation}", "*")], None
    else:
        found, kms = [Need(f"{service}:{operation}", "*")], None
    if kms and account.kms_key_arn:
        via = f"{service}.{account.region}.{account.dns_suffix}"
        found.append(Need(kms, account.kms_key_arn, {"kms:ViaService": [via]}))
    return found


def _listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def _condition_holds(
    operator: str, key: str, expected: str | list[str], context: dict[str, list[str]]
) -> bool:
    wanted = _listed(expected)
    present = key in context
    values = context.get(key, [])
    base = operator.split(":")[-1].removesuffix("IfExists")
    if base in ("StringEquals", "ArnEquals"):
        match = lambda v: v in wanted  # noqa: E731
    elif base in ("StringLike", "ArnLike"):
        match = lambda v: any(fnmatch.fnmatchcase(v, w) for w in wanted)  # noqa: E731
    else:
        return False  # an operator this checker does not know: fail closed
    if operator.startswith("ForAllValues:"):
        return all(match(v) for v in values)
    if operator.startswith("ForAnyValue:"):
        return any(match(v) for v in values)
    if not present:
        return operator.endswith("IfExists")
    return len(values) == 1 and match(values[0])


def allowed(policy: dict[str, Any], need: Need) -> bool:
    """Whether ``policy`` allows ``need`` (an explicit Deny wins; nothing allows by default)."""
    allow = False
    for statement in _listed(policy["Statement"]):
        if not any(fnmatch.fnmatchcase(need.action.lower(), a.lower()) for a in _listed(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(need.resource, r) for r in _listed(statement.get("Resource", "*"))):
            continue
        conditions = statement.get("Condition") or {}
        if not all(
            _condition_holds(operator, key, expected, need.context)
            for operator, pairs in conditions.items()
            for key, expected in pairs.items()
        ):
            continue
        if statement["Effect"] == "Deny":
            return False
        allow = True
    return allow


def refused(calls: Iterable[dict[str, Any]], policy: dict[str, Any], account: Account) -> list[str]:
    """Each call whose needs ``policy`` does not allow, described."""
    problems = []
    for call in calls:
        missing = [str(n) for n in needs(call, account) if not allowed(policy, n)]
        if missing:
            problems.append(f"{call['service']}:{call['operation']} needs {'; '.join(missing)}")
    return sorted(set(problems))
