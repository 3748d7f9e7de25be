"""Rollouts: move a model's ``live`` alias between Lambda versions that pin model versions.

All through the Lambda API (so it works the same on AWS and on the emulator): set MODEL_VERSION on the
function, wait for the update, publish a version, point the alias at it (or weight it as a canary).
Alias updates carry the RevisionId read before, so two concurrent rollouts cannot both win.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from model_registry import contract
from model_registry.errors import RolloutError
from model_registry.service import RegistryService


@dataclass(frozen=True)
class AliasState:
    """Where the live alias points."""

    stable_version: str
    canary_version: str | None
    canary_weight: float
    revision_id: str


class Rollouts:
    """Traffic control for the models of one platform."""

    def __init__(self, service: RegistryService, lambda_client: Any, platform_name: str) -> None:
        self.service = service
        self._lambda = lambda_client
        self.platform_name = platform_name

    def function_name(self, model_name: str) -> str:
        return contract.function_name(self.platform_name, model_name)

    def alias_state(self, model_name: str) -> AliasState:
        alias = self._lambda.get_alias(FunctionName=self.function_name(model_name), Name=contract.ALIAS_NAME)
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        canary, weight = next(iter(weights.items()), (None, 0.0))
        return AliasState(alias["FunctionVersion"], canary, float(weight), alias["RevisionId"])

    def pinned_model_version(self, model_name: str, lambda_version: str) -> str:
        config = self._lambda.get_function_configuration(
            FunctionName=self.function_name(model_name), Qualifier=lambda_version
        )
        return (config.get("Environment") or {}).get("Variables", {}).get(contract.ENV_MODEL_VERSION, "")

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
        return str(
            self._lambda.publish_version(FunctionName=name, Description=f"model v{model_version}")["Version"]
        )

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
        routing = (
            {"AdditionalVersionWeights": {canary: weight}}
            if canary and weight > 0
            else {"AdditionalVersionWeights": {}}
        )
        try:
            self._lambda.update_alias(
                FunctionName=self.function_name(model_name),
                Name=contract.ALIAS_NAME,
                FunctionVersion=stable,
                RoutingConfig=routing,
                RevisionId=revision_id,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailedException":
                raise RolloutError(
                    f"the live alias of {model_name!r} changed during this operation (another rollout?); "
                    "nothing was changed: check `modelctl status` and retry"
                ) from exc
            raise

    def deploy(self, model_name: str, model_version: int) -> str:
        """Send all traffic to ``model_version`` at once (used to bring a platform up)."""
        state = self.alias_state(model_name)
        lambda_version = self.publish(model_name, model_version)
        self.set_alias(model_name, lambda_version, None, 0.0, state.revision_id)
        return lambda_version
