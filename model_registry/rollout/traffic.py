"""The Lambda side of a rollout: read and point the live alias, publish versions that pin a model
version, wait for states, and put provisioned concurrency on versions. Every call the rollouts make to
the Lambda API is here, so the same code drives AWS and the local platform."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError, WaiterError

from model_registry.core import contract
from model_registry.core.errors import RolloutError
from model_registry.rollout.plan import AliasState

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
else:
    LambdaClient = Any

Say = Callable[[str], None]

# What a published version needs in its environment to serve (a version without them answers 404 for
# every model, which a rollout gate counting 5xx would not notice).
REQUIRED_ENVIRONMENT = (
    contract.ENV_TABLE,
    contract.ENV_BUCKET,
    contract.ENV_MODEL_NAME,
    contract.ENV_PLATFORM_NAME,
)
CONFLICT_RETRIES = 10  # ResourceConflictException: "An update is in progress"


def error_code(exc: ClientError) -> str:
    """The AWS error code of a client error."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


class LambdaTraffic:
    """The Lambda API calls of rollouts, for the functions of one platform."""

    def __init__(
        self, client: LambdaClient, platform_name: str, *, poll_s: float = 1.0, say: Say | None = None
    ):
        self.client = client
        self.platform_name = platform_name
        self.poll_s = poll_s
        self.say: Say = say or (lambda message: None)

    def function_name(self, model_name: str) -> str:
        return contract.function_name(self.platform_name, model_name)

    # ------------------------------------------------------------------ reading

    def alias_state(self, model_name: str) -> AliasState:
        """Where the live alias points now; :class:`RolloutError` when the model has no function."""
        try:
            alias = self.client.get_alias(
                FunctionName=self.function_name(model_name), Name=contract.ALIAS_NAME
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise RolloutError(
                    f"model {model_name!r} has no endpoint (function "
                    f"{self.function_name(model_name)}): add it to terraform's models map"
                ) from exc
            raise
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        canary, weight = next(iter(weights.items()), (None, 0.0))
        return AliasState(alias["FunctionVersion"], canary, float(weight), alias["RevisionId"])

    def pinned_model_version(self, model_name: str, lambda_version: str) -> str:
        """The model version a Lambda version serves (its MODEL_VERSION), "" when unpinned."""
        config = self.client.get_function_configuration(
            FunctionName=self.function_name(model_name), Qualifier=lambda_version
        )
        return (config.get("Environment") or {}).get("Variables", {}).get(contract.ENV_MODEL_VERSION, "")

    def published_versions(self, model_name: str) -> list[int]:
        """The function's published version numbers."""
        pages = self.client.get_paginator("list_versions_by_function").paginate(
            FunctionName=self.function_name(model_name)
        )
        return [int(c["Version"]) for page in pages for c in page["Versions"] if c["Version"].isdigit()]

    def delete_version(self, model_name: str, version: str) -> None:
        self.client.delete_function(FunctionName=self.function_name(model_name), Qualifier=version)

    # ------------------------------------------------------------------ publishing

    def publish(self, model_name: str, model_version: int) -> str:
        """Pin ``model_version`` on the function and publish a Lambda version, Active; return it."""
        name = self.function_name(model_name)
        self.wait_updated(name)  # a terraform apply may still be updating the function
        config = self.client.get_function_configuration(FunctionName=name)
        variables = self._environment(name, config)
        if variables.get(contract.ENV_MODEL_VERSION) != str(model_version):  # else: publish as it is
            variables[contract.ENV_MODEL_VERSION] = str(model_version)
            self._retry_conflicts(
                lambda: self.client.update_function_configuration(
                    FunctionName=name, Environment={"Variables": variables}, RevisionId=config["RevisionId"]
                ),
                name,
            )
            self.wait_updated(name)
        updated = self.client.get_function_configuration(FunctionName=name)
        if (updated.get("Environment") or {}).get("Variables", {}).get(contract.ENV_MODEL_VERSION) != str(
            model_version
        ):
            raise RolloutError(
                f"{name} changed during the rollout (another deployment?); nothing was published"
            )
        published = self._retry_conflicts(
            lambda: self.client.publish_version(
                FunctionName=name, Description=f"model v{model_version}", RevisionId=updated["RevisionId"]
            ),
            name,
        )
        version = str(published["Version"])
        self.ensure_active(name, version)
        return version

    @staticmethod
    def _environment(function_name: str, config: Mapping[str, Any]) -> dict[str, str]:
        """The function's variables, refusing what a publish would otherwise silently break.

        Variables encrypted with a customer managed key are returned only to a caller that may decrypt
        them; otherwise Lambda reports ``Environment.Error`` and no ``Variables``
        (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html), and writing
        back the rest would publish a version that serves nothing."""
        environment = config.get("Environment") or {}
        if environment.get("Error"):
            error = environment["Error"]
            raise RolloutError(
                f"cannot read the environment of {function_name}: {error.get('ErrorCode', '')} "
                f"{error.get('Message', '')}; the caller needs kms:Decrypt on the platform key. Nothing was "
                "changed"
            )
        variables = dict(environment.get("Variables") or {})
        missing = [key for key in REQUIRED_ENVIRONMENT if not variables.get(key)]
        if missing:
            raise RolloutError(
                f"{function_name} lacks {', '.join(missing)} in its environment (set by terraform): a "
                "version published from it could serve no model. Re-apply terraform; nothing was changed"
            )
        return variables

    def _retry_conflicts(self, call: Callable[[], Any], function_name: str) -> Any:
        """``call()``, retried while Lambda answers "an update is in progress"; a changed revision (someone
        else changed the function meanwhile) is a :class:`RolloutError`."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return call()
            except ClientError as exc:
                if error_code(exc) == "PreconditionFailedException":
                    raise RolloutError(
                        f"{function_name} changed during the rollout (another deployment?): {_message(exc)}; "
                        "retry"
                    ) from exc
                if error_code(exc) != "ResourceConflictException" or attempt == CONFLICT_RETRIES - 1:
                    raise
                self.wait_updated(function_name)
        raise AssertionError("unreachable")

    def wait_updated(self, function_name: str, timeout_s: float = 300.0) -> None:
        """Until the function's last update finished (``LastUpdateStatus: Successful``)."""
        try:
            self.client.get_waiter("function_updated_v2").wait(
                FunctionName=function_name,
                WaiterConfig={"Delay": max(1, round(self.poll_s)), "MaxAttempts": int(timeout_s)},
            )
        except WaiterError as exc:
            reason = (exc.last_response or {}).get("LastUpdateStatusReason", "") if exc.last_response else ""
            raise RolloutError(
                f"the last update of {function_name} did not succeed: {reason or exc}"
            ) from exc

    def ensure_active(self, function_name: str, version: str, timeout_s: float = 600.0) -> None:
        """Until ``version`` is Active; an Inactive one is re-activated first.

        A SnapStart version is Pending while Lambda takes its snapshot, and one not invoked for 14 days
        goes Inactive: invoking it fails with SnapStartNotReadyException and makes Lambda re-create the
        snapshot (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-troubleshooting.html,
        https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html). Traffic must not move to a
        version before it is Active: the usual rollback target is exactly such an idle version."""
        deadline = time.monotonic() + timeout_s
        activated = False
        while True:
            config = self.client.get_function_configuration(FunctionName=function_name, Qualifier=version)
            state = config.get("State", "Active")
            if state == "Active":
                return
            if state == "Inactive" and not activated:
                self.say(f"  version {version} of {function_name} is Inactive: re-activating it")
                self._activate(function_name, version)
                activated = True
            elif state == "Failed" or time.monotonic() > deadline:
                reason = config.get("StateReason") or config.get("StateReasonCode") or state
                raise RolloutError(f"version {version} of {function_name} is not Active ({state}): {reason}")
            time.sleep(self.poll_s)

    def _activate(self, function_name: str, version: str) -> None:
        try:
            self.client.invoke(
                FunctionName=function_name,
                Qualifier=version,
                Payload=json.dumps({contract.ACTIVATION_EVENT_KEY: True}).encode(),
            )
        except ClientError as exc:
            if error_code(exc) not in ("SnapStartNotReadyException", "ResourceConflictException"):
                raise RolloutError(
                    f"could not re-activate version {version} of {function_name}: {exc}"
                ) from exc

    # ------------------------------------------------------------------ the alias

    def set_alias(self, model_name: str, target: AliasState, revision_id: str) -> None:
        """Point the alias at ``target``; :class:`RolloutError` if it changed since ``revision_id``."""
        canary, weight = target.canary_version, target.canary_weight
        weights = {canary: round(weight, 4)} if canary and weight > 0 else {}
        try:
            self.client.update_alias(
                FunctionName=self.function_name(model_name),
                Name=contract.ALIAS_NAME,
                FunctionVersion=target.stable_version,
                RoutingConfig={"AdditionalVersionWeights": weights},
                RevisionId=revision_id,
            )
        except ClientError as exc:
            if error_code(exc) == "PreconditionFailedException":
                raise RolloutError(
                    f"the live alias of {model_name!r} changed during this operation (another rollout?); "
                    "check `modelctl status` and retry"
                ) from exc
            raise

    # ------------------------------------------------------------------ provisioned concurrency

    def wanted_provisioned(self, model_name: str) -> int:
        """The provisioned concurrency Terraform asks for (the function's tag); 0 when none.

        Read with ListTags, which fails loudly without permission: GetFunction returns ``Tags`` only to a
        caller allowed lambda:ListTags, and silently reading 0 would strip every version's provisioned
        concurrency (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html)."""
        name = self.function_name(model_name)
        arn = self.client.get_function_configuration(FunctionName=name)["FunctionArn"]
        try:
            tags = self.client.list_tags(Resource=arn).get("Tags") or {}
        except ClientError as exc:
            raise RolloutError(
                f"cannot read the tags of {name} ({error_code(exc)}): they carry its provisioned "
                "concurrency; the caller needs lambda:ListTags. Nothing was changed"
            ) from exc
        value = tags.get(contract.TAG_PROVISIONED_CONCURRENCY, "0")
        return int(value) if value.isascii() and value.isdigit() else 0

    def provisioned(self, model_name: str) -> dict[str, int]:
        """Requested provisioned concurrency per Lambda version of the model's function."""
        pages = self.client.get_paginator("list_provisioned_concurrency_configs").paginate(
            FunctionName=self.function_name(model_name)
        )
        return {
            config["FunctionArn"].rsplit(":", 1)[1]: int(config["RequestedProvisionedConcurrentExecutions"])
            for page in pages
            for config in page.get("ProvisionedConcurrencyConfigs", [])
        }

    def reserved_concurrency(self, model_name: str) -> int | None:
        """The function's reserved concurrency, None when it has none."""
        reserved = self.client.get_function_concurrency(FunctionName=self.function_name(model_name)).get(
            "ReservedConcurrentExecutions"
        )
        return None if reserved is None else int(reserved)

    def provision(
        self, model_name: str, plan: Mapping[str, int], current: Mapping[str, int], timeout_s: float = 900.0
    ) -> None:
        """Put ``plan`` on the versions and wait for READY; on any failure, put back what was there."""
        name = self.function_name(model_name)
        changed = [version for version, count in plan.items() if current.get(version) != count]
        done: list[str] = []
        try:
            for version in changed:
                self.client.put_provisioned_concurrency_config(
                    FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=plan[version]
                )
                done.append(version)
            deadline = time.monotonic() + timeout_s
            for version in changed:  # AWS takes minutes to allocate; traffic moves only once it is ready
                while True:
                    status = self.client.get_provisioned_concurrency_config(
                        FunctionName=name, Qualifier=version
                    )
                    if status["Status"] == "READY":
                        break
                    if status["Status"] == "FAILED" or time.monotonic() > deadline:
                        raise RolloutError(
                            f"provisioned concurrency on {name}:{version} is {status['Status']}: "
                            f"{status.get('StatusReason', 'not ready in time')}; traffic was not moved"
                        )
                    time.sleep(self.poll_s)
        except (ClientError, RolloutError) as exc:
            self._restore_provisioned(name, done, current)
            if isinstance(exc, RolloutError):
                raise
            raise RolloutError(
                f"Lambda refused provisioned concurrency on {name}: {_message(exc)}; what this step "
                "configured was removed and traffic was not moved"
            ) from exc

    def release(self, model_name: str, versions: list[str]) -> None:
        """Remove the provisioned concurrency of ``versions``."""
        for version in versions:
            self.client.delete_provisioned_concurrency_config(
                FunctionName=self.function_name(model_name), Qualifier=version
            )

    def _restore_provisioned(
        self, function_name: str, versions: list[str], previous: Mapping[str, int]
    ) -> None:
        for version in versions:
            try:
                if previous.get(version):
                    self.client.put_provisioned_concurrency_config(
                        FunctionName=function_name,
                        Qualifier=version,
                        ProvisionedConcurrentExecutions=previous[version],
                    )
                else:
                    self.client.delete_provisioned_concurrency_config(
                        FunctionName=function_name, Qualifier=version
                    )
            except ClientError as exc:  # report and go on: the rest must still be put back
                self.say(f"  could not restore provisioned concurrency on {function_name}:{version}: {exc}")
