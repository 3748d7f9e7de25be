"""Lambda's rules that moto does not enforce, added to its Lambda service.

Each rule cites the AWS documentation it follows; each has a test showing the emulator refusing what
Lambda refuses (tests/integration/test_aws_rules.py).

- Provisioned concurrency (moto lacks the API): configs on published versions or aliases, never
  ``$LATEST``, never on an alias with routing weights or a SnapStart version; all of a function's
  configs together within its reserved concurrency (or the account's unreserved pool minus 100); a
  config is ``IN_PROGRESS`` for a while (``LOCAL_PROVISIONING_SECONDS``) before it is ``READY``.
- Reserved concurrency: the account keeps at least 100 unreserved (moto's own
  ``MOTO_LAMBDA_CONCURRENCY_QUOTA``, which the emulator sets), and it cannot drop below the
  provisioned concurrency already configured.
- Updates take time: after ``UpdateFunctionConfiguration`` or ``UpdateFunctionCode`` the function is
  ``LastUpdateStatus: InProgress`` for ``LOCAL_UPDATE_SECONDS``; another update or a ``PublishVersion``
  meanwhile is a ``ResourceConflictException``.
- ``RevisionId``: functions and aliases carry one that changes with every change; an update, a
  publish or an alias update that names an older one is a ``PreconditionFailedException``.
- SnapStart: only on runtimes that offer it (contract.json), kept and reported (moto drops it); a
  published SnapStart version is ``Pending`` until its snapshot is taken (the local data plane takes it
  and reports ``Active`` or ``Failed`` through the local control endpoint), can be made ``Inactive``
  (as after 14 idle days), and invoking an ``Inactive`` version fails with
  ``SnapStartNotReadyException`` and starts its re-activation.
- A version an alias references cannot be deleted.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from model_registry.core import contract

Response = tuple[int, dict[str, str], str]
_LOCK = threading.RLock()
_REGION = re.compile(r"Credential=[^/]+/\d+/([^/]+)/")
_PC_PATH = r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[^/]+)/provisioned-concurrency/?$"
_STATE_PATH = r"{0}/_local/functions/(?P<function_name>[^/]+)/versions/(?P<version>[^/]+)/state$"
_PC_FUNCTION = re.compile(r"/functions/([^/]+)/provisioned-concurrency")
_STATE_TARGET = re.compile(r"/_local/functions/([^/]+)/versions/([^/]+)/state")
# (region, function, qualifier) -> provisioned-concurrency config
_CONFIGS: dict[tuple[str, str, str], dict[str, Any]] = {}


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"Type": "User", "Message": message, "message": message})
    return status, {"x-amzn-ErrorType": error_type, "Content-Type": "application/json"}, body


def _ok(status: int, body: dict[str, Any] | None) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(body) if body is not None else ""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "+0000")


def _region(headers: Any) -> str:
    match = _REGION.search(headers.get("Authorization", "") or "")
    return match.group(1) if match else "us-east-1"


def _backend(region: str) -> Any:
    from moto.awslambda.models import lambda_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    return lambda_backends[DEFAULT_ACCOUNT_ID][region]


def _client_error(error_type: str, message: str, status: int) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError(error_type, message)
    error.code = status
    return error


def conflict(message: str) -> Exception:
    return _client_error("ResourceConflictException", message, 409)


def invalid(message: str) -> Exception:
    return _client_error("InvalidParameterValueException", message, 400)


def precondition_failed(what: str) -> Exception:
    return _client_error(
        "PreconditionFailedException",
        f"The Revision Id provided does not match the latest Revision Id. Call the {what} API to retrieve "
        "the latest Revision Id",
        412,
    )


# --------------------------------------------------------------------------- provisioned concurrency


def _qualifier_target(backend: Any, function: str, qualifier: str) -> tuple[Any, Any | None]:
    """The function version a qualifier names (an alias resolved) and the alias, if it is one."""
    alias = None
    if not qualifier.isdigit():
        alias = backend.get_alias(qualifier, function)
        qualifier = alias.function_version
    return backend.get_function(function, qualifier), alias


def _config_view(config: dict[str, Any]) -> dict[str, Any]:
    """A config as Lambda reports it: IN_PROGRESS until its environments are allocated, then READY.
    "It can take a few minutes to allocate provisioned concurrency"
    (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html)."""
    ready = time.monotonic() >= config["_ready_at"]
    count = config["RequestedProvisionedConcurrentExecutions"]
    view = {k: v for k, v in config.items() if not k.startswith("_")}
    view["Status"] = "READY" if ready else "IN_PROGRESS"
    view["AvailableProvisionedConcurrentExecutions"] = count if ready else 0
    view["AllocatedProvisionedConcurrentExecutions"] = count if ready else 0
    return view


def _provisioned_total(region: str, function: str, excluding: str | None = None) -> int:
    return sum(
        c["RequestedProvisionedConcurrentExecutions"]
        for (r, f, q), c in _CONFIGS.items()
        if r == region and f == function and q != excluding
    )


def _check_provisioned_budget(backend: Any, region: str, function: str, qualifier: str, count: int) -> None:
    """ "Provisioned concurrency counts towards a function's reserved concurrency ... You can't allocate
    more provisioned concurrency than reserved concurrency for a function"; without reserved
    concurrency it comes from the account's unreserved pool, which keeps at least 100
    (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html)."""
    total = _provisioned_total(region, function, excluding=qualifier) + count
    reserved = backend.get_function(function).reserved_concurrency
    if reserved is not None:
        if total > int(reserved):
            raise invalid(
                f"Requested provisioned concurrency ({total} over all versions and aliases of {function}) "
                f"exceeds the function's reserved concurrency ({reserved})"
            )
        return
    quota = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000"))
    reserved_elsewhere = sum(int(f.reserved_concurrency or 0) for f in backend.list_functions())
    unreserved_pc = sum(
        c["RequestedProvisionedConcurrentExecutions"]
        for (r, f, q), c in _CONFIGS.items()
        if r == region
        and (f, q) != (function, qualifier)
        and backend.get_function(f).reserved_concurrency is None
    )
    if quota - reserved_elsewhere - unreserved_pc - count < 100:
        raise invalid(
            "Requested provisioned concurrency would decrease the account's UnreservedConcurrentExecution "
            "below its minimum value of [100]"
        )


def provisioned_concurrency(request: Any, full_url: str, headers: Any) -> Response:
    """Put/Get/Delete/ListProvisionedConcurrencyConfigs (the Lambda REST API, 2019-09-30)."""
    url = urlsplit(full_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    match = _PC_FUNCTION.search(url.path)
    function = unquote(match.group(1)) if match else ""
    function = function.split(":function:")[-1].split(":")[0]  # a name, a partial or a full ARN
    region = _region(headers)
    backend = _backend(region)
    with _LOCK:
        if request.method == "GET" and query.get("List"):
            configs = [
                _config_view(c) for (r, f, _), c in sorted(_CONFIGS.items()) if r == region and f == function
            ]
            return _ok(200, {"ProvisionedConcurrencyConfigs": configs})
        qualifier = query.get("Qualifier", "")
        if not qualifier or qualifier == "$LATEST":
            # "You can't configure provisioned concurrency on the unpublished version ($LATEST)"
            return _error(400, "InvalidParameterValueException", "a version or alias Qualifier is required")
        try:
            version, alias = _qualifier_target(backend, function, qualifier)
        except Exception:  # moto raises its own not-found types
            return _error(404, "ResourceNotFoundException", f"Function not found: {function}:{qualifier}")
        key = (region, function, qualifier)
        if request.method == "PUT":
            body = json.loads(request.get_data() or b"{}")
            count = body.get("ProvisionedConcurrentExecutions")
            if not isinstance(count, int) or count < 1:
                return _error(
                    400, "InvalidParameterValueException", "ProvisionedConcurrentExecutions must be >= 1"
                )
            if alias is not None and (alias.routing_config or {}).get("AdditionalVersionWeights"):
                # Provisioned concurrency goes on versions or on an alias that routes to one version.
                return _error(
                    400,
                    "InvalidParameterValueException",
                    "Alias with weights can not be used with Provisioned Concurrency",
                )
            if getattr(version, "snap_start_apply_on", "None") == "PublishedVersions":
                # "You can't use SnapStart and provisioned concurrency on the same function version"
                # (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html).
                return _error(
                    400,
                    "InvalidParameterValueException",
                    "Provisioned Concurrency is not supported on a version with SnapStart enabled",
                )
            try:
                _check_provisioned_budget(backend, region, function, qualifier, count)
            except Exception as exc:
                return _error(400, "InvalidParameterValueException", getattr(exc, "message", str(exc)))
            arn = f"{version.function_arn.split(':function:')[0]}:function:{function}:{qualifier}"
            created: dict[str, Any] = {
                "FunctionArn": arn,
                "RequestedProvisionedConcurrentExecutions": count,
                "LastModified": _now_iso(),
                "_ready_at": time.monotonic() + _seconds("LOCAL_PROVISIONING_SECONDS", 2.0),
            }
            _CONFIGS[key] = created
            return _ok(202, {k: v for k, v in _config_view(created).items() if k != "FunctionArn"})
        config = _CONFIGS.get(key)
        if config is None:
            return _error(
                404,
                "ProvisionedConcurrencyConfigNotFoundException",
                f"No Provisioned Concurrency Config found for function: {function}:{qualifier}",
            )
        if request.method == "DELETE":
            del _CONFIGS[key]
            return _ok(204, None)
        return _ok(200, {k: v for k, v in _config_view(config).items() if k != "FunctionArn"})


# --------------------------------------------------------------------------- version states (local control)


def set_version_state(function: Any, state: str, reason: str = "", reason_code: str = "") -> None:
    """Set a published version's ``State`` (the local data plane reports snapshots; tests age versions)."""
    function._local_state = (state, reason, reason_code)


def version_state(request: Any, full_url: str, headers: Any) -> Response:
    """``POST /_local/functions/<name>/versions/<v>/state`` ``{"State", "StateReason", "StateReasonCode"}``:
    not a Lambda API. The local data plane, standing in for Lambda's snapshotting, reports a SnapStart
    version Active or Failed; tests make a version Inactive, as 14 idle days would."""
    match = _STATE_TARGET.search(urlsplit(full_url).path)
    if match is None or request.method != "POST":
        return _error(404, "ResourceNotFoundException", "unknown local control path")
    name, version = unquote(match.group(1)), unquote(match.group(2))
    body = json.loads(request.get_data() or b"{}")
    state = body.get("State")
    if state not in ("Pending", "Active", "Inactive", "Failed"):
        return _error(400, "InvalidParameterValueException", f"unknown state {state!r}")
    with _LOCK:
        try:
            function = _backend(_region(headers)).get_function(name, version)
        except Exception:
            return _error(404, "ResourceNotFoundException", f"Function not found: {name}:{version}")
        set_version_state(function, state, body.get("StateReason", ""), body.get("StateReasonCode", ""))
    return _ok(200, {"State": state})


# --------------------------------------------------------------------------- patches of moto's Lambda


def _snap_start_response(apply_on: str, version: str) -> dict[str, str]:
    """The ``SnapStart`` block Lambda reports for a function version with ``ApplyOn`` set as given."""
    on = apply_on == "PublishedVersions" and version != "$LATEST"
    return {"ApplyOn": apply_on, "OptimizationStatus": "On" if on else "Off"}


def _check_snap_start(runtime: str, apply_on: str) -> None:
    """SnapStart for Python needs python3.12 or later
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html, "Supported features and limitations")."""
    if apply_on != "PublishedVersions":
        return
    facts = contract.LAMBDA_RUNTIMES.get(runtime)
    if facts is None or not facts.snap_start:
        raise invalid(f"SnapStart is not supported for runtime {runtime}")


def _start_update(function: Any, revision_id: str | None) -> None:
    """One update of ``$LATEST``: refused while another is in progress or when ``revision_id`` is stale.
    "While the update is in progress ... UpdateFunctionCode, UpdateFunctionConfiguration and
    PublishVersion fail" (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html)."""
    if time.monotonic() < function._local_updating_until:
        raise conflict(
            "The operation cannot be performed at this time. An update is in progress for resource: "
            f"{function.function_arn}"
        )
    if revision_id and revision_id != function._local_revision:
        raise precondition_failed("GetFunction")
    function._local_revision = str(uuid.uuid4())
    function._local_updating_until = time.monotonic() + _seconds("LOCAL_UPDATE_SECONDS", 1.0)


def _mark_published(version: Any) -> None:
    """A SnapStart version is Pending while Lambda takes its snapshot
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-activate.html); others are Active."""
    if getattr(version, "snap_start_apply_on", "None") == "PublishedVersions":
        set_version_state(version, "Pending", "Lambda is creating the snapshot", "Creating")
    else:
        set_version_state(version, "Active")


def _patch_functions() -> None:
    from moto.awslambda.models import LambdaFunction

    create, update, update_code, configuration = (
        LambdaFunction.__init__,
        LambdaFunction.update_configuration,
        LambdaFunction.update_function_code,
        LambdaFunction.get_configuration,
    )

    def __init__(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        create(self, account_id, spec, *args, **kwargs)
        self.snap_start_apply_on = (spec.get("SnapStart") or {}).get("ApplyOn", "None")
        _check_snap_start(self.run_time, self.snap_start_apply_on)
        self._local_revision = str(uuid.uuid4())
        self._local_updating_until = 0.0
        self._local_state = ("Active", "", "")
        self._local_in_code_update = False

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        with _LOCK:
            runtime = config_updates.get("Runtime", self.run_time)
            apply_on = (config_updates.get("SnapStart") or {}).get("ApplyOn", self.snap_start_apply_on)
            _check_snap_start(runtime, apply_on)
            _start_update(self, config_updates.get("RevisionId"))
            self.snap_start_apply_on = apply_on
            return update(self, config_updates)

    def update_function_code(self: Any, updated_spec: dict[str, Any]) -> dict[str, Any]:
        with _LOCK:
            if not self._local_in_code_update:  # the backend starts the update once per request
                _start_update(self, updated_spec.get("RevisionId"))
            return update_code(self, updated_spec)

    def get_configuration(self: Any, on_create: bool = False) -> dict[str, Any]:
        config = configuration(self, on_create)
        version = str(config.get("Version", "$LATEST"))
        config["SnapStart"] = _snap_start_response(getattr(self, "snap_start_apply_on", "None"), version)
        config["RevisionId"] = getattr(self, "_local_revision", "")
        state, reason, reason_code = getattr(self, "_local_state", ("Active", "", ""))
        config["State"] = state
        if reason:
            config["StateReason"] = reason
        if reason_code:
            config["StateReasonCode"] = reason_code
        if not on_create:
            updating = version == "$LATEST" and time.monotonic() < getattr(self, "_local_updating_until", 0.0)
            config["LastUpdateStatus"] = "InProgress" if updating else "Successful"
        return config

    LambdaFunction.__init__ = __init__
    LambdaFunction.update_configuration = update_configuration
    LambdaFunction.update_function_code = update_function_code
    LambdaFunction.get_configuration = get_configuration


def _fingerprint(function: Any) -> str:
    """What a published version is a copy of: code and configuration."""
    return json.dumps(
        [
            function.code_sha_256,
            function.description,
            function.handler,
            function.run_time,
            function.memory_size,
            function.timeout,
            function.role,
            function.environment_vars,
            [layer["Arn"] for layer in function.layers],
            getattr(function, "snap_start_apply_on", "None"),
            function.tracing_config,
        ],
        sort_keys=True,
        default=str,
    )


def _publish(storage: Any, name_or_arn: str, description: str = "") -> Any:
    """Publish ``$LATEST`` as a new version, as Lambda does: nothing new when nothing changed since the
    last publication, and numbers that only grow. moto numbers a new version after the count of the
    remaining ones, so after a deletion it would hand out a number again; "version numbers are never
    reused, even for a function that you delete and re-create"
    (https://docs.aws.amazon.com/lambda/latest/dg/versioning-intro.html, the guide's earlier edition)."""
    import copy

    latest = storage.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
    versions = storage._functions[latest.function_name]["versions"]
    last = getattr(latest, "_local_last_version", 0)
    # "If $LATEST is identical to a previously published version, you won't be able to create a new
    # version" (configuration-versions.html): what counts is the content, not whether an update ran.
    content = _fingerprint(latest)
    if (
        versions
        and int(versions[-1].version) == last
        and getattr(versions[-1], "_local_content", None) == content
    ):
        return versions[-1]
    latest.code_or_config_updated = False
    number = max([last, *(int(v.version) for v in versions)]) + 1
    latest._local_last_version = number
    version = copy.copy(latest)
    version._local_content = content
    version.set_version(number)
    if description:
        version.description = description
    versions.append(version)
    storage._arns[version.function_arn] = version
    _mark_published(version)
    return version


def _patch_storage() -> None:
    from moto.awslambda.models import LambdaStorage

    update_alias, delete = LambdaStorage.update_alias, LambdaStorage.del_function

    def publish_version(
        self: Any, name_or_arn: str, description: str = "", revision_id: str | None = None
    ) -> Any:
        with _LOCK:
            latest = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
            if time.monotonic() < getattr(latest, "_local_updating_until", 0.0):
                raise conflict(
                    "The operation cannot be performed at this time. An update is in progress for resource: "
                    f"{latest.function_arn}"
                )
            if revision_id and revision_id != getattr(latest, "_local_revision", ""):
                raise precondition_failed("GetFunction")
            return _publish(self, name_or_arn, description)

    def update_alias_checked(
        self: Any,
        name: str,
        function_name: str,
        function_version: str,
        description: str,
        routing_config: Any,
        revision_id: str | None = None,
    ) -> Any:
        with _LOCK:
            alias = self.get_alias(name, function_name)
            if revision_id and revision_id != alias.revision_id:
                raise precondition_failed("GetAlias")
            weights = (routing_config or {}).get("AdditionalVersionWeights") or {}
            region = alias.arn.split(":")[3]
            if weights and (region, function_name, name) in _CONFIGS:
                raise invalid("Alias with weights can not be used with Provisioned Concurrency")
            updated = update_alias(self, name, function_name, function_version, description, routing_config)
            updated.revision_id = str(uuid.uuid4())
            return updated

    def del_function(self: Any, name_or_arn: str, qualifier: str | None = None) -> None:
        with _LOCK:
            name = name_or_arn.split(":function:")[-1].split(":")[0]
            if qualifier and qualifier.isdigit() and name in self._functions:
                referencing = [
                    a.name
                    for a in self._get_function_aliases(name).values()
                    if str(a.function_version) == qualifier
                    or qualifier in ((a.routing_config or {}).get("AdditionalVersionWeights") or {})
                ]
                if referencing:
                    # Lambda refuses to delete a version an alias points to.
                    raise conflict(
                        f"Unable to delete version because the following aliases reference it: {referencing}"
                    )
            delete(self, name_or_arn, qualifier)

    LambdaStorage.publish_version = publish_version
    LambdaStorage.update_alias = update_alias_checked
    LambdaStorage.del_function = del_function


def _patch_backend() -> None:
    from moto.awslambda.models import LambdaBackend

    put_concurrency, update_code = LambdaBackend.put_function_concurrency, LambdaBackend.update_function_code

    def put_function_concurrency(self: Any, function_name: str, reserved_concurrency: str) -> str:
        with _LOCK:
            name = function_name.split(":function:")[-1].split(":")[0]
            provisioned = _provisioned_total(self.region_name, name)
            if int(reserved_concurrency) < provisioned:
                raise invalid(
                    f"ReservedConcurrentExecutions ({reserved_concurrency}) cannot be lower than the "
                    f"provisioned concurrency configured on {name} ({provisioned})"
                )
            return put_concurrency(self, function_name, reserved_concurrency)

    def update_function_code(self: Any, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
        with _LOCK:
            function = self.get_function(function_name, qualifier)
            _start_update(function, body.get("RevisionId"))
            function._local_in_code_update = True  # moto calls the function's update twice per request
            try:
                result = update_code(self, function_name, qualifier, {**body, "Publish": False})
            finally:
                function._local_in_code_update = False
            if body.get("Publish"):
                result = _publish(self._lambdas, function_name).get_configuration()
            return result

    LambdaBackend.put_function_concurrency = put_function_concurrency
    LambdaBackend.update_function_code = update_function_code


def _check_invocable(backend: Any, function_name: str, qualifier: str | None) -> None:
    """ "When you try to invoke a function that is inactive, the invocation fails and Lambda sets the
    function to pending state until the function resources are recreated"
    (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html); for SnapStart versions the
    error is SnapStartNotReadyException (snapstart-troubleshooting.html)."""
    with _LOCK:
        target = backend.get_function(function_name, qualifier)
        state = getattr(target, "_local_state", ("Active", "", ""))[0]
        if state == "Inactive":
            set_version_state(target, "Pending", "Lambda is restoring the snapshot", "Restoring")
            raise _client_error(
                "SnapStartNotReadyException",
                "Lambda is initializing your function. It will be ready to invoke once your function "
                "state becomes ACTIVE.",
                409,
            )
        if state != "Active":
            raise conflict(
                "The operation cannot be performed at this time. The function is currently in the "
                f"following state: {state}"
            )


def _patch_responses() -> None:
    """Pass ``RevisionId`` through to the checks above (moto's responses drop it), and check the state
    of the version an invocation names (moto reads the qualifier from a lower-case parameter)."""
    from moto.awslambda.responses import LambdaResponse

    invoke = LambdaResponse.invoke

    def invoke_checked(self: Any) -> Any:
        function_name = unquote(self.path.rsplit("/", 2)[-2])
        _check_invocable(
            self.backend, function_name, self._get_param("Qualifier") or self._get_param("qualifier")
        )
        return invoke(self)

    def publish_version(self: Any) -> Any:
        function_name = unquote(self.path.split("/")[-2])
        body = json.loads(self.body or "{}")
        fn = self.backend._lambdas.publish_version(
            function_name, body.get("Description", ""), body.get("RevisionId")
        )
        return 201, {"status": 201}, json.dumps(fn.get_configuration())

    def update_alias(self: Any) -> Any:
        function_name = unquote(self.path.rsplit("/")[-3])
        alias_name = unquote(self.path.rsplit("/", 2)[-1])
        params = json.loads(self.body)
        alias = self.backend._lambdas.update_alias(
            alias_name,
            function_name,
            params.get("FunctionVersion"),
            params.get("Description"),
            params.get("RoutingConfig"),
            params.get("RevisionId"),
        )
        return 201, {"status": 201}, json.dumps(alias.to_json())

    LambdaResponse.publish_version = publish_version
    LambdaResponse.update_alias = update_alias
    LambdaResponse.invoke = invoke_checked


def install() -> None:
    """Apply Lambda's rules to moto's Lambda service (before the server starts)."""
    from moto.awslambda import models, urls

    if getattr(models, "_local_rules_installed", False):
        return
    urls.url_paths.setdefault(_PC_PATH, provisioned_concurrency)
    urls.url_paths.setdefault(_STATE_PATH, version_state)
    _patch_functions()
    _patch_storage()
    _patch_backend()
    _patch_responses()
    models._local_rules_installed = True
