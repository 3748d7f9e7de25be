"""What a release owner does with modelctl is allowed by the operator's policy document
(iam/modelctl-operator.json): every AWS call modelctl makes in a whole model lifecycle is recorded and
checked against it, resource by resource."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from examples.models import ExampleModel
from model_registry.core import contract
from tests.e2e.conftest import RunningPlatform
from tests.iam_check import Account, needs, read_calls, refused, render

pytestmark = pytest.mark.e2e
MODEL = "diabetes"


def test_a_model_lifecycle_needs_only_the_operator_policy(
    running: RunningPlatform, examples: dict[str, ExampleModel], tmp_path: Path
) -> None:
    log = tmp_path / "modelctl-aws-calls.jsonl"
    env = {
        **os.environ,
        **running.platform.env,
        contract.ENV_AWS_CALL_LOG: str(log),
        "MODELCTL_USER": "owner",
    }

    def modelctl(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "model_registry.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"modelctl {' '.join(args)}: {result.stderr}"
        return result.stdout

    example = examples[MODEL]
    rows = tmp_path / "validation.npy"
    np.save(rows, example.X_test)
    registered = modelctl(
        "register", MODEL, str(example.artifact), "--optimize", "--validation-data", str(rows), "--json"
    )
    version = str(json.loads(registered)["version"])
    modelctl("versions", MODEL)
    modelctl("show", MODEL, version)
    modelctl("rollout", MODEL, version, "--canary", "20")
    modelctl("status", MODEL)
    modelctl("promote", MODEL)
    modelctl("history", MODEL)
    modelctl("rollback", MODEL, "--reason", "permissions test")  # back to the version the suite expects
    modelctl("prune", MODEL, "--dry-run")
    modelctl("prune", MODEL)

    outputs = running.platform.outputs
    account = Account(kms_key_arn=outputs["kms_key_arn"])
    policy = render(
        "modelctl-operator.json",
        partition=account.partition,
        region=account.region,
        account_id=account.account_id,
        dns_suffix=account.dns_suffix,
        name_prefix=outputs["platform_name"],
        kms_key_arn=outputs["kms_key_arn"],
    )
    calls = read_calls(log)
    operations = {f"{c['service']}:{c['operation']}" for c in calls}
    # The lifecycle really touched each service the policy grants (so the check below is not vacuous).
    assert {
        "dynamodb:TransactWriteItems",
        "s3:PutObject",
        "lambda:PublishVersion",
        "lambda:UpdateAlias",
        "monitoring:GetMetricStatistics",
    } <= operations, operations
    print(
        f"{len(calls)} calls, {len({str(n) for c in calls for n in needs(c, account)})} distinct permissions"
    )
    problems = refused(calls, policy, account)
    assert not problems, "iam/modelctl-operator.json does not allow:\n" + "\n".join(problems)
