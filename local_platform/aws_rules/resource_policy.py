"""Whether a Lambda function's resource-based policy lets API Gateway invoke it.

API Gateway invokes a Lambda integration as the service principal ``apigateway.amazonaws.com``; without
a statement in the function's (or the invoked alias's) resource-based policy allowing
``lambda:InvokeFunction`` for it, an HTTP API answers ``500 Internal Server Error`` and logs
"The IAM role configured on the integration or API Gateway doesn't have permissions to call the
integration" (https://repost.aws/knowledge-center/api-gateway-http-lambda-integrations,
https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway.html#apigateway-permissions).

A permission added with a qualifier applies to invocations of that alias or version only; the statement
then names the qualified ARN as its ``Resource``. Conditions are evaluated for the keys API Gateway
sends (``AWS:SourceArn``, ``AWS:SourceAccount``) with the operators permissions use; any other
condition fails closed, so a policy this code cannot read is a refusal, never a silent allow.
"""

from __future__ import annotations

import fnmatch
from typing import Any

API_GATEWAY = "apigateway.amazonaws.com"
_INVOKE_ACTIONS = ("lambda:InvokeFunction", "lambda:*", "*")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_is(principal: Any, service: str) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return service in _as_list(principal.get("Service", [])) or principal.get("AWS") == "*"
    return False


def _resource_is(resource: Any, function_name: str, qualifier: str | None) -> bool:
    wanted = f"{function_name}:{qualifier}" if qualifier else function_name
    for arn in _as_list(resource):
        if not isinstance(arn, str) or ":function:" not in arn:
            continue
        named = arn.split(":function:", 1)[1]
        if named == wanted or (named == f"{function_name}:*" and qualifier):
            return True
    return False


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        if not isinstance(tests, dict):
            return False
        for key, expected in tests.items():
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if actual is None:
                return False
            patterns = [str(p) for p in _as_list(expected)]
            if operator in ("ArnLike", "StringLike"):
                matched = any(fnmatch.fnmatchcase(actual, p) for p in patterns)
            elif operator in ("ArnEquals", "StringEquals"):
                matched = actual in patterns
            else:
                return False  # an operator this evaluator does not know: fail closed
            if not matched:
                return False
    return True


def allows_invoke(
    policy: dict[str, Any] | None,
    function_name: str,
    qualifier: str | None,
    source_arn: str,
    source_account: str,
    principal: str = API_GATEWAY,
) -> bool:
    """True when ``policy`` allows ``principal`` to invoke ``function_name`` (at ``qualifier``) from
    ``source_arn``: an Allow statement matches and no Deny statement does."""
    if not policy:
        return False
    context = {"AWS:SourceArn": source_arn, "AWS:SourceAccount": source_account}
    allowed = False
    for statement in _as_list(policy.get("Statement", [])):
        if not isinstance(statement, dict):
            continue
        matches = (
            _principal_is(statement.get("Principal"), principal)
            and any(action in _INVOKE_ACTIONS for action in _as_list(statement.get("Action", [])))
            and _resource_is(statement.get("Resource"), function_name, qualifier)
            and _condition_holds(statement.get("Condition") or {}, context)
        )
        if matches and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (matches and statement.get("Effect") == "Allow")
    return allowed
