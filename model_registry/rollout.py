"""Rollouts: move a model's ``live`` alias between Lambda versions that pin model versions.

Everything goes through the Lambda API, so it works the same on AWS and on the local platform: set
MODEL_VERSION on the function, wait for the update, publish a version, point the alias at it or give
it a canary weight. A per-model lock in the registry (a conditional write) and the alias RevisionId
keep two rollouts of one model from both winning; every change is journaled in the registry.
"""

from __future__ import annotations

import getpass
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from model_registry import contract
from model_registry.errors import RolloutError
from model_registry.records import utc_now
from model_registry.service import RegistryService
from model_registry.store import RolloutJournal

METRICS_NAMESPACE = "ModelPlatform"


def provisioned_plan(total: int, state: AliasState) -> dict[str, int]:
    """Provisioned concurrency per Lambda version for an alias state: the stable version keeps all of
    ``total``, a canary its weighted share, at least 1. Empty when ``total`` is 0."""
    if total <= 0:
        return {}
    plan = {state.stable_version: total}
    if state.canary_version:
        plan[state.canary_version] = max(1, math.ceil(total * state.canary_weight))
    return plan


Say = Callable[[str], None]


@dataclass(frozen=True)
class AliasState:
    """Where the live alias points."""

    stable_version: str
    canary_version: str | None
    canary_weight: float
    revision_id: str


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


class Rollouts:
    """Traffic control for the models of one platform."""

    def __init__(
        self,
        service: RegistryService,
        lambda_client: Any,
        platform_name: str,
        cloudwatch_client: Any | None = None,
        actor: str | None = None,
    ) -> None:
        self.service = service
        self._lambda = lambda_client
        self._cloudwatch = cloudwatch_client
        self.platform_name = platform_name
        self.journal = RolloutJournal(service.store)
        self.actor = actor or os.environ.get("MODELCTL_USER") or getpass.getuser()

    # ------------------------------------------------------------------ reading state

    def function_name(self, model_name: str) -> str:
        return contract.function_name(self.platform_name, model_name)

    def alias_state(self, model_name: str) -> AliasState:
        try:
            alias = self._lambda.get_alias(
                FunctionName=self.function_name(model_name), Name=contract.ALIAS_NAME
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
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
        """Requests, errors (function errors + handler 5xx) and p99 duration of one Lambda version."""
        if self._cloudwatch is None:
            raise RolloutError("no CloudWatch client: cannot read health metrics")
        name = self.function_name(model_name)
        end = datetime.now(UTC) + timedelta(seconds=60)
        version_dims = [
            {"Name": "FunctionName", "Value": name},
            {"Name": "ExecutedVersion", "Value": lambda_version},
        ]

        def datapoints(
            namespace: str, metric: str, dimensions: list[dict[str, str]], **statistic: Any
        ) -> list:
            return self._cloudwatch.get_metric_statistics(
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
        model_version = self.pinned_model_version(model_name, lambda_version)
        handler_dims = [
            {"Name": "model", "Value": model_name},
            {"Name": "model_version", "Value": model_version},
            {"Name": "service", "Value": "model-serving"},
        ]
        server_errors = total(METRICS_NAMESPACE, "ServerErrors", handler_dims)
        # The emulator computes no percentiles: there this list stays empty and the p99 gate cannot fire.
        p99_values = [
            p["ExtendedStatistics"]["p99"]
            for p in datapoints("AWS/Lambda", "Duration", version_dims, ExtendedStatistics=["p99"])
            if "p99" in (p.get("ExtendedStatistics") or {})
        ]
        p99 = max(p99_values) if p99_values else None
        return Health(requests, function_errors + server_errors, p99)

    # ------------------------------------------------------------------ changing state

    def publish(self, model_name: str, model_version: int) -> str:
        """Verify the model version, pin it on the function and publish a Lambda version; return it."""
        record = self.service.store.get_version(model_name, model_version)
        self.service.fetch_verified(record)  # refuses a tampered or missing artifact before any traffic moves
        name = self.function_name(model_name)
        config = self._lambda.get_function_configuration(FunctionName=name)
        variables = dict((config.get("Environment") or {}).get("Variables") or {})
        variables[contract.ENV_MODEL_VERSION] = str(model_version)
        self._lambda.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
        self._wait_updated(name)
        version = str(
            self._lambda.publish_version(FunctionName=name, Description=f"model v{model_version}")["Version"]
        )
        self._wait_version_active(name, version)
        return version

    def _wait_version_active(self, function_name: str, version: str, timeout_s: float = 600.0) -> None:
        """With SnapStart a new version is Pending while Lambda takes its snapshot (init and the
        before-snapshot hooks run then); no traffic may move to it before it is Active."""
        deadline = time.monotonic() + timeout_s
        while True:
            config = self._lambda.get_function_configuration(FunctionName=function_name, Qualifier=version)
            state = config.get("State", "Active")
            if state == "Active":
                return
            if state == "Failed" or time.monotonic() > deadline:
                reason = config.get("StateReason") or config.get("StateReasonCode") or state
                raise RolloutError(f"version {version} of {function_name} did not become Active: {reason}")
            time.sleep(1)

    def _wait_updated(self, function_name: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            config = self._lambda.get_function_configuration(FunctionName=function_name)
            status = config.get("LastUpdateStatus", "Successful")
            if status == "Successful":
                return
            if status == "Failed" or time.monotonic() > deadline:
                raise RolloutError(f"function update of {function_name} did not succeed: {status}")
            time.sleep(1)

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
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailedException":
                raise RolloutError(
                    f"the live alias of {model_name!r} changed during this operation (another rollout?); "
                    "check `modelctl status` and retry"
                ) from exc
            raise

    def _move(self, model_name: str, before: AliasState, after: AliasState) -> None:
        """Point the alias at ``after``, with provisioned concurrency on its versions before traffic
        arrives and taken off the versions it leaves only once they carry none."""
        total = self.wanted_provisioned(model_name)
        plan = provisioned_plan(total, after)
        current = self.provisioned(model_name)
        self._provision(model_name, plan, current)
        self.set_alias(
            model_name, after.stable_version, after.canary_version, after.canary_weight, before.revision_id
        )
        for version in current.keys() - plan.keys():
            self._lambda.delete_provisioned_concurrency_config(
                FunctionName=self.function_name(model_name), Qualifier=version
            )

    # ------------------------------------------------------------------ provisioned concurrency

    def wanted_provisioned(self, model_name: str) -> int:
        """The provisioned concurrency Terraform asks for (the function's tag); 0 when none."""
        tags = self._lambda.get_function(FunctionName=self.function_name(model_name)).get("Tags") or {}
        value = tags.get(contract.TAG_PROVISIONED_CONCURRENCY, "0")
        return int(value) if value.isdigit() else 0

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

    def _provision(
        self, model_name: str, plan: dict[str, int], current: dict[str, int], timeout_s: float = 900.0
    ) -> None:
        name = self.function_name(model_name)
        changed = [version for version, count in plan.items() if current.get(version) != count]
        for version in changed:
            self._lambda.put_provisioned_concurrency_config(
                FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=plan[version]
            )
        deadline = time.monotonic() + timeout_s
        for version in changed:  # AWS takes minutes to allocate; traffic moves only once it is ready
            while True:
                status = self._lambda.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
                if status["Status"] == "READY":
                    break
                if status["Status"] == "FAILED" or time.monotonic() > deadline:
                    raise RolloutError(
                        f"provisioned concurrency on {name}:{version} is {status['Status']}: "
                        f"{status.get('StatusReason', 'not ready in time')}; traffic was not moved"
                    )
                time.sleep(5)

    def _locked(self, model_name: str, action: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        owner = f"{self.actor}:{uuid.uuid4().hex[:8]}"
        self.journal.acquire(model_name, owner)
        try:
            return action(owner)
        finally:
            self.journal.release(model_name, owner)

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

        return str(self._locked(model_name, run)["lambda_version"])

    def start_canary(self, model_name: str, model_version: int, percent: float) -> dict[str, Any]:
        """Publish ``model_version`` and send it ``percent`` % of traffic next to the stable version."""
        if not 0 < percent <= 100:
            raise RolloutError(f"canary percentage must be in (0, 100], got {percent}")

        def run(_: str) -> dict[str, Any]:
            before = self.alias_state(model_name)
            if before.canary_version:
                raise RolloutError(
                    f"{model_name!r} already has a canary (Lambda version {before.canary_version}); "
                    "promote or roll it back first"
                )
            if self.pinned_model_version(model_name, before.stable_version) == str(model_version):
                raise RolloutError(f"model version {model_version} of {model_name!r} is already live")
            lambda_version = self.publish(model_name, model_version)
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

        return self._locked(model_name, run)

    def promote(self, model_name: str) -> dict[str, Any]:
        """Move all traffic to the canary."""

        def run(_: str) -> dict[str, Any]:
            before = self.alias_state(model_name)
            if not before.canary_version:
                raise RolloutError(f"{model_name!r} has no canary to promote")
            after = AliasState(before.canary_version, None, 0.0, "")
            self._move(model_name, before, after)
            return self._event(model_name, "promote", before, after, "ok")

        return self._locked(model_name, run)

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
                if index:
                    self._set_weight(model_name, canary, percent)
                    say(f"step {index + 1}/{len(steps)}: {percent:g}%")
                if percent >= 100:
                    break
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
