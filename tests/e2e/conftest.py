"""One local platform per test session: emulator, Terraform apply, registration, data plane."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from examples.models import ExampleModel
from local_platform.launcher import (
    LocalPlatform,
    local_platform,
    register_and_roll_out_examples,
)
from model_registry.core import aws, contract
from model_registry.core.settings import Settings
from tests.helpers import REPO_ROOT
from tests.iam_check import Account, read_calls, refused, render
from tooling.packaging import build_all


@dataclass
class RunningPlatform:
    platform: LocalPlatform
    settings: Settings
    versions: dict[str, int]

    @property
    def url(self) -> str:
        return self.platform.url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def function_policy(
    outputs: dict, model: str, account: Account, document: str = "function.json", function_name: str = ""
) -> dict:
    """iam/function.json (or the pool's document) as Terraform renders it for a function's role."""
    arn = f"arn:{account.partition}"
    return render(
        document,
        table_arn=f"{arn}:dynamodb:{account.region}:{account.account_id}:table/{outputs['table_name']}",
        model_name=model,
        bucket_arn=f"{arn}:s3:::{outputs['bucket_name']}",
        artifact_prefix=contract.ARTIFACT_PREFIX,
        kms_key_arn=outputs["kms_key_arn"],
        region=account.region,
        dns_suffix=account.dns_suffix,
        log_group_arn=f"{arn}:logs:{account.region}:{account.account_id}:log-group:/aws/lambda/"
        f"{function_name or outputs['functions'][model]['function_name']}",
    )


def _check_function_calls(platform: LocalPlatform, log: Path) -> None:
    """Every AWS call any function made in the session is allowed by its role's policy: the models'
    by iam/function.json, the pool's by iam/pool-function.json."""
    account = Account(kms_key_arn=platform.outputs["kms_key_arn"])
    calls = read_calls(log)
    problems = []
    checked = 0
    roles = [
        (model, function["function_name"], function_policy(platform.outputs, model, account))
        for model, function in platform.outputs["functions"].items()
    ]
    pool = platform.outputs.get("pool_function")
    if pool:
        name = pool["function_name"]
        roles.append(
            ("pool", name, function_policy(platform.outputs, "pool", account, "pool-function.json", name))
        )
    for model, function_name, policy in roles:
        own = [c for c in calls if c["function"] == function_name]
        checked += len(own)
        problems += [f"{model}: {p}" for p in refused(own, policy, account)]
    # breast-cancer's provisioned environment loads its model at session start: at least a GetItem and a
    # GetObject, whatever else the session ran
    assert checked >= 2, f"only {checked} AWS calls of the functions were recorded"
    assert not problems, "the functions' role policies (iam/*function.json) do not allow:\n" + "\n".join(
        problems
    )


@pytest.fixture(scope="session")
def running(
    tmp_path_factory: pytest.TempPathFactory, examples: dict[str, ExampleModel], terraform_bin: str
) -> Iterator[RunningPlatform]:
    """Needs terraform like the Terraform tests: a failure under REQUIRE_TERRAFORM=1, else a visible skip.

    Every AWS call the model functions make during the session is recorded, and checked at its end
    against the role policy Terraform gives them (iam/function.json)."""
    build_all(REPO_ROOT / "build" / "lambda", log=lambda m: None)
    state = tmp_path_factory.mktemp("platform")
    pids: list[int] = []
    call_log = state / "function-aws-calls.jsonl"
    with local_platform(state, say=lambda m: None, aws_call_log=call_log) as platform:
        with aws.environment(platform.env):
            settings = Settings.from_env()
            versions = register_and_roll_out_examples(settings, state, lambda m: None)
        # Tests pass the emulator's endpoint explicitly: nothing leaks into other tests' environment.
        try:
            yield RunningPlatform(platform, settings, versions)
        finally:
            pids = [platform.emulator.process.pid, *platform.server.plane.worker_pids()]
    left = [pid for pid in pids if _alive(pid)]
    assert not left, f"processes left behind after the platform stopped: {left}"
    _check_function_calls(platform, call_log)
