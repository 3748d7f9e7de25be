"""Rollouts: move a model's ``live`` alias between Lambda versions that pin model versions.

Everything goes through the Lambda API, so it works the same on AWS and on the local platform: set
MODEL_VERSION on the function, wait for the update, publish a version (with the revision the update
produced), make sure every version the alias will route to is Active, put provisioned concurrency on
them, and point the alias at them (with the alias's revision). A per-model lock in the registry (a
conditional write, renewed while a step waits) and the revision ids keep two rollouts of one model,
or a rollout and a ``terraform apply``, from both winning; every change is journaled in the registry.
"""

from __future__ import annotations

import getpass
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from model_registry.core import contract
from model_registry.core.errors import ConflictError, RolloutError
from model_registry.core.records import utc_now
from model_registry.registry.service import RegistryService
from model_registry.registry.store import RolloutJournal

# What a published version needs in its environment to serve (a version without them answers 404 for
# every model, which a rollout gate counting 5xx would not notice).
REQUIRED_ENVIRONMENT = (
    contract.ENV_TABLE,
    contract.ENV_BUCKET,
    contract.ENV_MODEL_NAME,
    contract.ENV_PLATFORM_NAME,
)
LOCK_TTL_S = 300  # renewed every LOCK_TTL_S / 5 while a step runs, so it outlives every wait
KEEP_VERSIONS = 3  # published versions kept beyond the alias's and the rollback target
CONFLICT_RETRIES = 10  # ResourceConflictException: "An update is in progress"


def provisioned_plan(total: int, state: AliasState) -> dict[str, int]:
    """Provisioned concurrency per Lambda version for an alias state: the stable version keeps all of
    ``total``, a canary its weighted share, at least 1. Empty when ``total`` is 0."""
    if total <= 0:
        return {}
    plan = {state.stable_version: total}
    if state.canary_version:
        plan[state.canary_version] = max(1, math.ceil(total * state.canary_weight))
    return plan


def peak_provisioned(current: dict[str, int], plan: dict[str, int]) -> int:
    """Provisioned concurrency held at the peak of a move that raises the new versions' before it lowers
    the old ones' (so traffic never meets a cold version): every version at the higher of the two."""
    return sum(max(current.get(v, 0), plan.get(v, 0)) for v in current.keys() | plan.keys())


Say = Callable[[str], None]


@dataclass(frozen=True)
class AliasState:
    """Where the live alias points."""

    stable_version: str
    canary_version: str | None
    canary_weight: float
    revision_id: str

    @property
    def versions(self) -> set[str]:
        return {self.stable_version, *([self.canary_version] if self.canary_version else [])}


@dataclass(frozen=True)
class Health:
    """Traffic seen by one Lambda version over a window."""

    requests: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Gate:
    """Limits a canary must stay within at every step of a progressive rollout."""

    max_error_rate: float = 0.01
    max_p99_ms: float | None = None
    min_requests: int = 10


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


class Rollouts:
    """Traffic control for the models of one platform."""

    def __init__(
        self,
        service: RegistryService,
        lambda_client: Any,
        platform_name: str,
        cloudwatch_client: Any | None = None,
        actor: str | None = None,
        *,
        lock_ttl_s: int = LOCK_TTL_S,
        poll_s: float = 1.0,
        say: Say | None = None,
    ) -> None:
        self.service = service
        self._lambda = lambda_client
        self._cloudwatch = cloudwatch_client
        self.platform_name = platform_name
        self.journal = RolloutJournal(service.store)
        self.actor = actor or os.environ.get("MODELCTL_USER") or getpass.getuser()
        self.lock_ttl_s = lock_ttl_s
        self.poll_s = poll_s
        self.say: Say = say or (lambda message: None)

    # ------------------------------------------------------------------ reading state

    def function_name(self, model_name: str) -> str:
        return contract.function_name(self.platform_name, model_name)

    def alias_state(self, model_name: str) -> AliasState:
        try:
            alias = self._lambda.get_alias(
                FunctionName=self.function_name(model_name), Name=contract.ALIAS_NAME
            )
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                raise RolloutError(
                    f"model {model_name!r} has no endpoint (function "
                    f"{self.function_name(model_name)}): add it to terraform's models map"
                ) from exc
            raise
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        canary, weight = next(iter(weights.items()), (None, 0.0))
        return AliasState(alias["FunctionVersion"], canary, float(weight), alias["RevisionId"])

    def pinned_model_version(self, model_name: str, lambda_version: str) -> str:
        config = self._lambda.get_function_configuration(
            FunctionName=self.function_name(model_name), Qualifier=lambda_version
        )
        return (config.get("Environment") or {}).get("Variables", {}).get(contract.ENV_MODEL_VERSION, "")

    def health(self, model_name: str, lambda_version: str, since: datetime) -> Health:
        """Requests, errors (function errors + handler 5xx) and p99 duration of one Lambda version.

        Lambda publishes per-version metrics of alias invocations only with the dimensions FunctionName,
        Resource (``<function>:<alias>``) and ExecutedVersion, and CloudWatch answers only for the exact
        dimension set that was published
        (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html,
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html).
        """
        cloudwatch = self._cloudwatch
        if cloudwatch is None:
            raise RolloutError("no CloudWatch client: cannot read health metrics")
        name = self.function_name(model_name)
        end = datetime.now(UTC) + timedelta(seconds=60)
        version_dims = [
            {"Name": "FunctionName", "Value": name},
            {"Name": "Resource", "Value": f"{name}:{contract.ALIAS_NAME}"},
            {"Name": "ExecutedVersion", "Value": lambda_version},
        ]

        def datapoints(
            namespace: str, metric: str, dimensions: list[dict[str, str]], **statistic: Any
        ) -> list:
            return cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=metric,
                Dimensions=dimensions,
                StartTime=since,
                EndTime=end,
                Period=60,
                **statistic,
            )["Datapoints"]

        def total(namespace: str, metric: str, dimensions: list[dict[str, str]]) -> int:
            return int(sum(p["Sum"] for p in datapoints(namespace, metric, dimensions, Statistics=["Sum"])))

        requests = total("AWS/Lambda", "Invocations", version_dims)
        function_errors = total("AWS/Lambda", "Errors", version_dims)
        handler_dims = contract.version_dimensions(
            model_name, self.pinned_model_version(model_name, lambda_version) or "latest", lambda_version
        )
        server_errors = total(
            contract.METRICS_NAMESPACE,
            contract.SERVER_ERRORS_METRIC,
            [{"Name": k, "Value": v} for k, v in handler_dims.items()],
        )
        p99_values = [
            p["ExtendedStatistics"]["p99"]
            for p in datapoints("AWS/Lambda", "Duration", version_dims, ExtendedStatistics=["p99"])
            if "p99" in (p.get("ExtendedStatistics") or {})
        ]
        p99 = max(p99_values) if p99_values else None
        return Health(requests, function_errors + server_errors, p99)

    # ------------------------------------------------------------------ publishing

    def publish(self, model_name: str, model_version: int) -> str:
        """Verify the model version, pin it on the function and publish a Lambda version; return it."""
        record = self.service.store.get_version(model_name, model_version)
        self.service.fetch_verified(record)  # refuses a tampered or missing artifact before any traffic moves
        name = self.function_name(model_name)
        self._wait_updated(name)  # a terraform apply may still be updating the function
        config = self._lambda.get_function_configuration(FunctionName=name)
        variables = self._environment(name, config)
        if variables.get(contract.ENV_MODEL_VERSION) != str(model_version):  # else: publish as it is
            variables[contract.ENV_MODEL_VERSION] = str(model_version)
            self._retry_conflicts(
                lambda: self._lambda.update_function_configuration(
                    FunctionName=name, Environment={"Variables": variables}, RevisionId=config["RevisionId"]
                ),
                name,
            )
            self._wait_updated(name)
        updated = self._lambda.get_function_configuration(FunctionName=name)
        if (updated.get("Environment") or {}).get("Variables", {}).get(contract.ENV_MODEL_VERSION) != str(
            model_version
        ):
            raise RolloutError(
                f"{name} changed during the rollout (another deployment?); nothing was published"
            )
        version = str(
            self._retry_conflicts(
                lambda: self._lambda.publish_version(
                    FunctionName=name, Description=f"model v{model_version}", RevisionId=updated["RevisionId"]
                ),
                name,
            )["Version"]
        )
        self._ensure_active(name, version)
        return version

    @staticmethod
    def _environment(function_name: str, config: dict[str, Any]) -> dict[str, str]:
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
                if _code(exc) == "PreconditionFailedException":
                    raise RolloutError(
                        f"{function_name} changed during the rollout (another deployment?): {_message(exc)}; "
                        "retry"
                    ) from exc
                if _code(exc) != "ResourceConflictException" or attempt == CONFLICT_RETRIES - 1:
                    raise
                self._wait_updated(function_name)
        raise AssertionError("unreachable")

    def _wait_updated(self, function_name: str, timeout_s: float = 300.0) -> None:
        """Until the function's last update finished (``LastUpdateStatus: Successful``)."""
        try:
            self._lambda.get_waiter("function_updated_v2").wait(
                FunctionName=function_name,
                WaiterConfig={"Delay": max(1, round(self.poll_s)), "MaxAttempts": int(timeout_s)},
            )
        except WaiterError as exc:
            reason = (exc.last_response or {}).get("LastUpdateStatusReason", "") if exc.last_response else ""
            raise RolloutError(
                f"the last update of {function_name} did not succeed: {reason or exc}"
            ) from exc

    def _ensure_active(self, function_name: str, version: str, timeout_s: float = 600.0) -> None:
        """Until ``version`` is Active; an Inactive one is re-activated first.

        A SnapStart version is Pending while Lambda takes its snapshot, and one not invoked for 14 days
        goes Inactive: invoking it fails with SnapStartNotReadyException and makes Lambda re-create the
        snapshot (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-troubleshooting.html,
        https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html). Traffic must not move to a
        version before it is Active: the usual rollback target is exactly such an idle version."""
        deadline = time.monotonic() + timeout_s
        activated = False
        while True:
            config = self._lambda.get_function_configuration(FunctionName=function_name, Qualifier=version)
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
        import json

        try:
            self._lambda.invoke(
                FunctionName=function_name,
                Qualifier=version,
                Payload=json.dumps({contract.ACTIVATION_EVENT_KEY: True}).encode(),
            )
        except ClientError as exc:
            if _code(exc) not in ("SnapStartNotReadyException", "ResourceConflictException"):
                raise RolloutError(
                    f"could not re-activate version {version} of {function_name}: {exc}"
                ) from exc

    # ------------------------------------------------------------------ moving traffic

    def set_alias(
        self, model_name: str, stable: str, canary: str | None, weight: float, revision_id: str
    ) -> None:
        """Point the alias; :class:`RolloutError` if it changed since ``revision_id`` was read."""
        weights = {canary: round(weight, 4)} if canary and weight > 0 else {}
        try:
            self._lambda.update_alias(
                FunctionName=self.function_name(model_name),
                Name=contract.ALIAS_NAME,
                FunctionVersion=stable,
                RoutingConfig={"AdditionalVersionWeights": weights},
                RevisionId=revision_id,
            )
        except ClientError as exc:
            if _code(exc) == "PreconditionFailedException":
                raise RolloutError(
                    f"the live alias of {model_name!r} changed during this operation (another rollout?); "
                    "check `modelctl status` and retry"
                ) from exc
            raise

    def _move(self, model_name: str, before: AliasState, after: AliasState) -> None:
        """Point the alias at ``after``: its versions Active and provisioned first, the provisioned
        concurrency of the versions it leaves removed only once they carry no traffic."""
        name = self.function_name(model_name)
        total = self.wanted_provisioned(model_name)
        plan = provisioned_plan(total, after)
        current = self.provisioned(model_name)
        self._check_reserved(model_name, current, plan)
        for version in sorted(after.versions):
            self._ensure_active(name, version)
        self._provision(model_name, plan, current)
        self.set_alias(
            model_name, after.stable_version, after.canary_version, after.canary_weight, before.revision_id
        )
        for version in current.keys() - plan.keys():
            self._lambda.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)

    # ------------------------------------------------------------------ provisioned concurrency

    def wanted_provisioned(self, model_name: str) -> int:
        """The provisioned concurrency Terraform asks for (the function's tag); 0 when none.

        Read with ListTags, which fails loudly without permission: GetFunction returns ``Tags`` only to a
        caller allowed lambda:ListTags, and silently reading 0 would strip every version's provisioned
        concurrency (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html)."""
        name = self.function_name(model_name)
        arn = self._lambda.get_function_configuration(FunctionName=name)["FunctionArn"]
        try:
            tags = self._lambda.list_tags(Resource=arn).get("Tags") or {}
        except ClientError as exc:
            raise RolloutError(
                f"cannot read the tags of {name} ({_code(exc)}): they carry its provisioned concurrency; "
                "the caller needs lambda:ListTags. Nothing was changed"
            ) from exc
        value = tags.get(contract.TAG_PROVISIONED_CONCURRENCY, "0")
        return int(value) if value.isascii() and value.isdigit() else 0

    def provisioned(self, model_name: str) -> dict[str, int]:
        """Requested provisioned concurrency per Lambda version of the model's function."""
        pages = self._lambda.get_paginator("list_provisioned_concurrency_configs").paginate(
            FunctionName=self.function_name(model_name)
        )
        return {
            config["FunctionArn"].rsplit(":", 1)[1]: int(config["RequestedProvisionedConcurrentExecutions"])
            for page in pages
            for config in page.get("ProvisionedConcurrencyConfigs", [])
        }

    def _check_reserved(self, model_name: str, current: dict[str, int], plan: dict[str, int]) -> None:
        """Provisioned concurrency on all versions counts inside the function's reserved concurrency
        (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html): a move that would
        hold more at its peak is refused before anything changes."""
        if not plan:
            return
        reserved = self._lambda.get_function_concurrency(FunctionName=self.function_name(model_name)).get(
            "ReservedConcurrentExecutions"
        )
        peak = peak_provisioned(current, plan)
        if reserved is not None and peak > int(reserved):
            raise RolloutError(
                f"moving {model_name!r} needs {peak} provisioned concurrency at once (the new versions' "
                f"{sum(plan.values())} before the old versions' {sum(current.values())} is removed), over "
                f"its reserved concurrency {reserved}: raise reserved_concurrency to at least twice "
                "provisioned_concurrency in terraform. Nothing was changed"
            )

    def _provision(
        self, model_name: str, plan: dict[str, int], current: dict[str, int], timeout_s: float = 900.0
    ) -> None:
        """Put ``plan`` on the versions and wait for READY; on any failure, put back what was there."""
        name = self.function_name(model_name)
        changed = [version for version, count in plan.items() if current.get(version) != count]
        done: list[str] = []
        try:
            for version in changed:
                self._lambda.put_provisioned_concurrency_config(
                    FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=plan[version]
                )
                done.append(version)
            deadline = time.monotonic() + timeout_s
            for version in changed:  # AWS takes minutes to allocate; traffic moves only once it is ready
                while True:
                    status = self._lambda.get_provisioned_concurrency_config(
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

    def _restore_provisioned(self, function_name: str, versions: list[str], previous: dict[str, int]) -> None:
        for version in versions:
            try:
                if previous.get(version):
                    self._lambda.put_provisioned_concurrency_config(
                        FunctionName=function_name,
                        Qualifier=version,
                        ProvisionedConcurrentExecutions=previous[version],
                    )
                else:
                    self._lambda.delete_provisioned_concurrency_config(
                        FunctionName=function_name, Qualifier=version
                    )
            except ClientError as exc:  # report and go on: the rest must still be put back
                self.say(f"  could not restore provisioned concurrency on {function_name}:{version}: {exc}")

    # ------------------------------------------------------------------ the lock and the journal

    @contextmanager
    def _lock(self, model_name: str) -> Iterator[str]:
        """The model's rollout lock, renewed in the background while the step runs."""
        owner = f"{self.actor}:{uuid.uuid4().hex[:8]}"
        self.journal.acquire(model_name, owner, ttl_s=self.lock_ttl_s)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(self.lock_ttl_s / 5):
                if not self.journal.renew(model_name, owner, ttl_s=self.lock_ttl_s):
                    self.say(f"  the rollout lock of {model_name} was lost")
                    return

        renewer = threading.Thread(target=heartbeat, daemon=True, name=f"lock-{model_name}")
        renewer.start()
        try:
            yield owner
        finally:
            stop.set()
            renewer.join(timeout=10)
            self.journal.release(model_name, owner)

    def _locked(self, model_name: str, action: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        with self._lock(model_name) as owner:
            return action(owner)

    def _event(
        self,
        model_name: str,
        action: str,
        before: AliasState,
        after: AliasState | None,
        outcome: str,
        **extra: Any,
    ) -> dict[str, Any]:
        event = {
            "action": action,
            "by": self.actor,
            "at": utc_now(),
            "outcome": outcome,
            "from": {
                "stable": before.stable_version,
                "canary": before.canary_version,
                "canary_weight": before.canary_weight,
            },
            "to": (
                {
                    "stable": after.stable_version,
                    "canary": after.canary_version,
                    "canary_weight": after.canary_weight,
                }
                if after
                else None
            ),
            **extra,
        }
        self.journal.record(model_name, event)
        return event

    # ------------------------------------------------------------------ the operations

    def deploy(self, model_name: str, model_version: int) -> str:
        """All traffic to ``model_version`` at once (platform bring-up)."""

        def run(_: str) -> dict[str, Any]:
            before = self.alias_state(model_name)
            lambda_version = self.publish(model_name, model_version)
            after = AliasState(lambda_version, None, 0.0, "")
            self._move(model_name, before, after)
            return self._event(
                model_name,
                "deploy",
                before,
                after,
                "ok",
                model_version=model_version,
                lambda_version=lambda_version,
            )

        lambda_version = str(self._locked(model_name, run)["lambda_version"])
        self._prune_quietly(model_name)
        return lambda_version

    def start_canary(self, model_name: str, model_version: int, percent: float) -> dict[str, Any]:
        """Publish ``model_version`` and send it ``percent`` % of traffic next to the stable version.

        The same model version as the stable one is a canary too when the function's code or
        configuration changed since (a new handler, layer, memory or timeout from ``terraform apply``):
        that is how such a change reaches traffic gradually."""
        if not 0 < percent <= 100:
            raise RolloutError(f"canary percentage must be in (0, 100], got {percent}")

        def run(_: str) -> dict[str, Any]:
            before = self.alias_state(model_name)
            if before.canary_version:
                raise RolloutError(
                    f"{model_name!r} already has a canary (Lambda version {before.canary_version}); "
                    "promote or roll it back first"
                )
            lambda_version = self.publish(model_name, model_version)
            if lambda_version == before.stable_version:
                # Lambda publishes nothing new when neither code nor configuration changed.
                raise RolloutError(
                    f"model version {model_version} of {model_name!r} is already live on Lambda version "
                    f"{lambda_version}, with the same code and configuration: nothing to roll out"
                )
            if percent >= 100:
                after = AliasState(lambda_version, None, 0.0, "")
            else:
                after = AliasState(before.stable_version, lambda_version, percent / 100, "")
            self._move(model_name, before, after)
            return self._event(
                model_name,
                "rollout",
                before,
                after,
                "ok",
                model_version=model_version,
                lambda_version=lambda_version,
                percent=percent,
            )

        event = self._locked(model_name, run)
        if event["to"]["canary"] is None:
            self._prune_quietly(model_name)
        return event

    def promote(self, model_name: str) -> dict[str, Any]:
        """Move all traffic to the canary."""

        def run(_: str) -> dict[str, Any]:
            before = self.alias_state(model_name)
            if not before.canary_version:
                raise RolloutError(f"{model_name!r} has no canary to promote")
            after = AliasState(before.canary_version, None, 0.0, "")
            self._move(model_name, before, after)
            return self._event(model_name, "promote", before, after, "ok")

        event = self._locked(model_name, run)
        self._prune_quietly(model_name)
        return event

    def rollback(
        self, model_name: str, reason: str = "requested", *, action: str = "rollback"
    ) -> dict[str, Any]:
        """Drop the canary, or (with no canary) return to the previous stable version."""

        def run(_: str) -> dict[str, Any]:
            before = self.alias_state(model_name)
            if before.canary_version:
                after = AliasState(before.stable_version, None, 0.0, "")
            else:
                previous = self._previous_stable(model_name, before.stable_version)
                if previous is None:
                    raise RolloutError(
                        f"{model_name!r} has no canary and no earlier stable version to return to"
                    )
                after = AliasState(previous, None, 0.0, "")
            self._move(model_name, before, after)
            return self._event(model_name, action, before, after, "ok", reason=reason)

        return self._locked(model_name, run)

    def _previous_stable(self, model_name: str, current: str) -> str | None:
        for event in self.journal.events(model_name, limit=200):
            if event.get("outcome") != "ok" or not event.get("to"):
                continue
            if event["to"]["stable"] == current and event["from"]["stable"] != current:
                return str(event["from"]["stable"])
        return None

    # ------------------------------------------------------------------ old versions

    def prune(self, model_name: str, keep: int = KEEP_VERSIONS, dry_run: bool = False) -> list[str]:
        """Delete the published versions nothing needs any more; returns them (oldest first).

        Kept: the versions the alias routes to, the version a rollback would return to, versions with
        provisioned concurrency, and the ``keep`` newest. Every published version costs code storage
        (75 GB per region), SnapStart bills snapshot caching per version, and Terraform's refresh pages
        through all of them (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
        https://aws.amazon.com/lambda/pricing/)."""
        name = self.function_name(model_name)
        state = self.alias_state(model_name)
        needed = set(state.versions) | set(self.provisioned(model_name))
        previous = self._previous_stable(model_name, state.stable_version)
        if previous:
            needed.add(previous)
        published = sorted(
            (
                int(config["Version"])
                for page in self._lambda.get_paginator("list_versions_by_function").paginate(
                    FunctionName=name
                )
                for config in page["Versions"]
                if config["Version"].isdigit()
            ),
        )
        newest = {str(v) for v in published[-keep:]} if keep > 0 else set()
        doomed = [str(v) for v in published if str(v) not in needed | newest]
        if not dry_run:
            for version in doomed:
                self._lambda.delete_function(FunctionName=name, Qualifier=version)
        return doomed

    def _prune_quietly(self, model_name: str) -> None:
        """Prune after a successful step; a failure there (no lambda:DeleteFunction, say) is reported, and
        the step it follows stands."""
        try:
            deleted = self.prune(model_name)
        except (ClientError, RolloutError, ConflictError) as exc:
            self.say(f"  old versions of {model_name} were not pruned: {exc}")
            return
        if deleted:
            self.say(f"  pruned Lambda versions {', '.join(deleted)} of {model_name}")

    # ------------------------------------------------------------------ progressive rollouts

    def progressive(
        self,
        model_name: str,
        model_version: int,
        steps: Sequence[float],
        interval_s: float,
        gate: Gate,
        say: Say = print,
        poll_s: float = 2.0,
    ) -> dict[str, Any]:
        """Walk the canary through ``steps`` (percent), watching its health; roll back by itself on a breach.

        Ctrl-C rolls the canary back and re-raises, leaving only the stable version live.
        """
        if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(steps):
            raise RolloutError("steps must be increasing percentages in (0, 100], e.g. 10,50,100")
        first = self.start_canary(model_name, model_version, steps[0])
        canary = str(first["lambda_version"])
        say(
            f"step 1/{len(steps)}: {steps[0]:g}% of {model_name} on Lambda version {canary} "
            f"(model v{model_version})"
        )
        try:
            for index, percent in enumerate(steps):
                if percent >= 100:
                    break  # the last step: the promotion below
                if index:
                    self._set_weight(model_name, canary, percent)
                    say(f"step {index + 1}/{len(steps)}: {percent:g}%")
                breach = self._watch(model_name, canary, interval_s, gate, say, poll_s)
                if breach:
                    self.rollback(model_name, reason=breach, action="auto-rollback")
                    say(f"rolled back: {breach}")
                    return {"outcome": "rolled-back", "reason": breach, "lambda_version": canary}
            self.promote(model_name)
        except KeyboardInterrupt:
            state = self.alias_state(model_name)
            if state.canary_version:
                self.rollback(model_name, reason="interrupted", action="auto-rollback")
            state = self.alias_state(model_name)
            say(
                f"interrupted: all traffic on stable Lambda version {state.stable_version} "
                f"(model v{self.pinned_model_version(model_name, state.stable_version)}); canary dropped"
            )
            raise
        say(f"promoted: all traffic on Lambda version {canary} (model v{model_version})")
        return {"outcome": "promoted", "lambda_version": canary}

    def _set_weight(self, model_name: str, canary: str, percent: float) -> None:
        def run(_: str) -> dict[str, Any]:
            before = self.alias_state(model_name)
            if before.canary_version != canary:
                raise RolloutError(f"the canary of {model_name!r} changed under this rollout; stopping")
            after = (
                AliasState(canary, None, 0.0, "")
                if percent >= 100
                else AliasState(before.stable_version, canary, percent / 100, "")
            )
            self._move(model_name, before, after)
            return self._event(model_name, "step", before, after, "ok", percent=percent)

        self._locked(model_name, run)

    def _watch(
        self, model_name: str, canary: str, interval_s: float, gate: Gate, say: Say, poll_s: float
    ) -> str | None:
        """Watch one step; a breach reason, or None when the canary stayed healthy with enough traffic."""
        since = datetime.now(UTC) - timedelta(seconds=1)
        deadline = time.monotonic() + interval_s
        hard_deadline = deadline + 2 * interval_s  # waiting for enough traffic to judge
        while True:
            time.sleep(poll_s)
            health = self.health(model_name, canary, since)
            p99 = f", p99 {health.p99_ms:.0f} ms" if health.p99_ms is not None else ""
            say(
                f"  canary: {health.requests} requests, {health.errors} errors ({health.error_rate:.1%}){p99}"
            )
            if health.requests >= gate.min_requests and health.error_rate > gate.max_error_rate:
                return (
                    f"error rate {health.error_rate:.1%} over {health.requests} requests exceeds "
                    f"{gate.max_error_rate:.1%}"
                )
            if gate.max_p99_ms is not None and health.p99_ms is not None and health.p99_ms > gate.max_p99_ms:
                return f"p99 duration {health.p99_ms:.0f} ms exceeds {gate.max_p99_ms:.0f} ms"
            now = time.monotonic()
            if now >= deadline and health.requests >= gate.min_requests:
                return None
            if now >= hard_deadline:
                return f"not enough traffic to judge: {health.requests} < {gate.min_requests} requests"

    # ------------------------------------------------------------------ reporting

    def status(self, model_name: str, window_s: int = 900) -> dict[str, Any]:
        """Stable and canary Lambda versions, the model versions they pin, weights, recent traffic."""
        state = self.alias_state(model_name)
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        rows = []
        for role, version, weight in (
            ("stable", state.stable_version, 1 - state.canary_weight),
            ("canary", state.canary_version, state.canary_weight),
        ):
            if version is None:
                continue
            row: dict[str, Any] = {
                "model": model_name,
                "role": role,
                "lambda_version": version,
                "model_version": self.pinned_model_version(model_name, version),
                "weight": round(weight, 4),
            }
            if self._cloudwatch is not None:
                health = self.health(model_name, version, since)
                row |= {"requests": health.requests, "errors": health.errors}
            rows.append(row)
        return {"model": model_name, "versions": rows, "state": asdict(state)}
