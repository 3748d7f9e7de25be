"""A model moves from the pool into the dedicated tier and back under load, with real Terraform applies
of a changed ``models`` map on the local platform, and not one request fails: the pool answers until the
model's own routes can reach its function, the function serves the version the pool served, a rollout on
it moves the registry policy too, a one-step removal is refused, and a drain hands the model back to the
pool before its function goes."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import hcl2
import pytest
import requests
from botocore.exceptions import ClientError

from local_platform.routes import best_match
from model_registry.core import contract
from model_registry.registry.service import RegistryService
from tests.e2e.conftest import RunningPlatform
from tests.e2e.test_pooled_tier import X, _register, _until
from tests.e2e.test_rollouts_live import Load, _rollouts
from tests.helpers import REPO_ROOT
from tooling.deploy import DeployError

pytestmark = pytest.mark.e2e
MOVER = "wine-tiers"
SETTLE_S = 0.5  # the data plane re-reads an alias every 0.2 s


def _tfvars_models() -> dict[str, Any]:
    """terraform/terraform.tfvars' models map (python-hcl2 keeps the quotes of strings)."""
    with (REPO_ROOT / "terraform" / "terraform.tfvars").open() as handle:
        models = hcl2.load(handle)["models"]
    return {
        name: {k: v.strip('"') if isinstance(v, str) else v for k, v in entry.items()}
        for name, entry in models.items()
    }


def test_a_model_moves_between_the_tiers_under_load_without_a_failed_request(
    running: RunningPlatform, tmp_path: Path
) -> None:
    service = RegistryService.from_settings(running.settings)
    first, model_1 = _register(service, tmp_path, MOVER, 1.0)
    second, model_2 = _register(service, tmp_path, MOVER, 0.02)
    rows = X[::7]
    v1, v2 = str(first.version), str(second.version)
    expected = {v1: model_1.predict(rows).tolist(), v2: model_2.predict(rows).tolist()}
    plane = running.platform.server.plane
    own_function = contract.function_name(running.settings.platform_name, MOVER)
    pool_function = running.platform.outputs["pool_function"]["function_name"]
    base = _tfvars_models()
    said: list[str] = []
    applies = iter(range(100))

    def apply(models: dict[str, Any], **options: Any) -> None:
        var_file = tmp_path / f"models-{next(applies)}.tfvars.json"
        var_file.write_text(json.dumps({"models": models}))
        replace(running.platform.deployment, var_files=[var_file]).apply(say=said.append, **options)

    def serving_function() -> str:
        matched = best_match(plane.routes(), "POST", f"/models/{MOVER}/predict")
        assert matched is not None
        return matched[0].function_name

    url = f"{running.url}/models/{MOVER}/predict"

    def served_version() -> str:
        """One request's version, its predictions checked against that version's own ``predict``."""
        response = requests.post(url, json={"instances": rows.tolist()}, timeout=30)
        assert response.status_code == 200, response.text
        version = response.json()["model_version"]
        assert response.json()["predictions"] == expected[version]
        return str(version)

    assert serving_function() == pool_function
    moved_back = False
    try:
        with Load(url, {"instances": rows.tolist()}, clients=2, pause_s=0.02) as load:
            load.wait_for(lambda r: r[2] == 200, count=10)

            # 1. into the dedicated tier: the function serves v1, the policy's version, not the latest
            apply({**base, MOVER: {"framework": "sklearn", "memory_size": 512}})
            _until(lambda: serving_function() == own_function)
            moved_in = time.monotonic()
            load.wait_for(lambda r: r[0] > moved_in + SETTLE_S, count=20)
            assert served_version() == v1

            # 2. a rollout on its own function: the registry policy follows the alias
            _rollouts(running).deploy(MOVER, second.version)
            deployed = time.monotonic()
            assert service.store.summary(MOVER).policy.stable == second.version
            load.wait_for(lambda r: r[0] > deployed + SETTLE_S, count=20)
            assert served_version() == v2

            # 3. routes and function out in one apply: refused, nothing applied
            with pytest.raises(DeployError, match="drain = true"):
                apply(base)
            assert serving_function() == own_function

            # 4. drained: its routes go, the pool answers it with the version its function served
            apply({**base, MOVER: {"framework": "sklearn", "memory_size": 512, "drain": True}})
            _until(lambda: serving_function() == pool_function)
            drained = time.monotonic()
            load.wait_for(lambda r: r[0] > drained + SETTLE_S, count=20)
            assert served_version() == v2

            # 5. the entry removed on a later apply: the function goes
            apply(base)
            moved_back = True
            removed = time.monotonic()
            load.wait_for(lambda r: r[0] > removed + SETTLE_S, count=20)
    finally:
        if not moved_back:  # leave the session's platform as the other tests expect it
            apply(base, allow_interruption=True)

    failures = [r for r in load.records if r[2] != 200]
    print(f"{len(load.records)} requests across 3 applies and a refused one, {len(failures)} failed")
    assert not failures, failures[:5]
    assert {r[3] for r in load.records if r[1] < deployed} == {v1}
    assert {r[3] for r in load.records if r[0] > deployed + SETTLE_S} == {v2}
    lam = boto3.client("lambda", endpoint_url=running.settings.endpoint_url)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        lam.get_function(FunctionName=own_function)
