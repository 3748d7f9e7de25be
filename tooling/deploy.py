"""Drive Terraform (through python-terraform) for both targets: AWS, or the local emulator.

The same root module applies to both; only the environment differs: the emulator's endpoint, dummy
credentials and path-style S3 for ``local``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_terraform import IsFlagged, Terraform

from local_platform.emulator import DUMMY_CREDENTIALS
from model_registry.core import aws, contract
from model_registry.registry.store import RegistryStore
from model_registry.rollout.traffic import LambdaTraffic
from tooling import tier_moves

TERRAFORM_DIR = Path(__file__).resolve().parents[1] / "terraform"
# Written by `make terraformrc`: a provider_installation block with the local filesystem mirror.
MAKE_CLI_CONFIG = TERRAFORM_DIR.parent / "build" / "terraformrc"
TARGETS = ("aws", "local")


class DeployError(RuntimeError):
    """A Terraform command failed; the message carries the end of its output."""


@dataclass
class Deployment:
    """One Terraform root applied to one target, with its own state file for ``local``."""

    target: str = "aws"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    state_path: Path | None = None
    var_files: list[Path] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)  # JSON values: None is null
    working_dir: Path = TERRAFORM_DIR
    stream: bool = False

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.target == "local" and not self.endpoint_url:
            raise ValueError("the local target needs the emulator's endpoint URL")

    def environment(self) -> dict[str, str]:
        """Environment variables that select the target."""
        env = {contract.ENV_REGION: self.region, "AWS_DEFAULT_REGION": self.region}
        configured = os.environ.get("TF_CLI_CONFIG_FILE", "")
        if (not configured or not Path(configured).exists()) and MAKE_CLI_CONFIG.exists():
            env["TF_CLI_CONFIG_FILE"] = str(MAKE_CLI_CONFIG)
        if self.target == "local":
            env |= DUMMY_CREDENTIALS | {
                contract.ENV_ENDPOINT_URL: str(self.endpoint_url),
                "TF_VAR_s3_use_path_style": "true",
                "TF_VAR_deletion_protection": "false",
                # The emulator speaks plain HTTP: a TLS-only bucket policy would refuse every request.
                "TF_VAR_artifact_bucket_require_tls": "false",
            }
        return env

    def _env(self) -> AbstractContextManager[None]:
        # Against AWS, an endpoint left in the caller's environment must not redirect Terraform.
        drop = [contract.ENV_ENDPOINT_URL] if self.target == "aws" else []
        return aws.environment(self.environment(), without=drop)

    def _terraform(self) -> Terraform:
        return Terraform(
            working_dir=str(self.working_dir),
            var_file=[str(p) for p in self.var_files] or None,
            variables=self.variables or None,
            state=str(self.state_path) if self.state_path else None,
        )

    def _run(self, command: str, *args: Any, **options: Any) -> tuple[int, str]:
        terraform = self._terraform()
        with self._env():
            code, out, err = getattr(terraform, command)(*args, capture_output=not self.stream, **options)
        return code, f"{out or ''}{err or ''}"

    def _check(self, command: str, code: int, output: str, ok: tuple[int, ...] = (0,)) -> None:
        if code not in ok:
            raise DeployError(f"terraform {command} failed (exit {code}):\n{output[-4000:]}")

    def init(self) -> None:
        """``terraform init`` (no backend re-configuration for local state files)."""
        with self._env():
            code, out, err = Terraform(working_dir=str(self.working_dir)).init(
                capture_output=not self.stream, reconfigure=None, input=False, no_color=IsFlagged
            )
        output = f"{out or ''}{err or ''}"
        if code != 0 and "registry.terraform.io" in output:
            output += (
                "\nhint: terraform cannot reach its registry; `make terraformrc` writes a CLI config that "
                "uses the local provider mirror (TF_PLUGIN_MIRROR=... to point at another one)"
            )
        self._check("init", code, output)

    def plan(self) -> bool:
        """Whether the plan has changes (``-detailed-exitcode``)."""
        code, output = self._run("plan", detailed_exitcode=IsFlagged, input=False)
        self._check("plan", code, output, ok=(0, 2))
        return code == 2

    def plan_text(self) -> str:
        """The output of ``terraform plan`` (for timing and reports)."""
        code, output = self._run("plan", detailed_exitcode=IsFlagged, input=False, no_color=IsFlagged)
        self._check("plan", code, output, ok=(0, 2))  # 2: the plan has changes
        return output

    def apply(self, *, allow_interruption: bool = False, say: Callable[[str], None] = print) -> None:
        """Plan, check the plan's tier moves (:mod:`tooling.tier_moves`), then apply that saved plan.

        Refused (:class:`DeployError`, nothing applied) when the plan would fail requests while models
        move between the dedicated tier and the pool, unless ``allow_interruption``."""
        with tempfile.TemporaryDirectory(prefix="tfplan-") as scratch:
            plan_file = Path(scratch) / "plan.tfplan"
            code, output = self._run("plan", out=str(plan_file), input=False)
            self._check("plan", code, output, ok=(0, 2))
            if code == 0:
                return  # no changes
            problems = self._tier_move_problems(self._show(plan_file), say)
            if problems and not allow_interruption:
                raise DeployError(
                    "refused, nothing applied: the plan moves models between the tiers in a way that can "
                    "fail requests:\n- "
                    + "\n- ".join(problems)
                    + "\n(--allow-interruption applies it anyway)"
                )
            for problem in problems:
                say(f"applying anyway (allow_interruption): {problem}")
            saved = Terraform(
                working_dir=str(self.working_dir), state=str(self.state_path) if self.state_path else None
            )
            with self._env():
                code, out, err = saved.apply(str(plan_file), skip_plan=True, capture_output=not self.stream)
            self._check("apply", code, f"{out or ''}{err or ''}")

    def _show(self, plan_file: Path) -> dict[str, Any]:
        with self._env():
            code, out, err = Terraform(working_dir=str(self.working_dir)).cmd(
                "show", str(plan_file), json=IsFlagged, no_color=IsFlagged
            )
        self._check("show", code, f"{out or ''}{err or ''}")
        return dict(json.loads(out))

    def _tier_move_problems(self, plan: dict[str, Any], say: Callable[[str], None]) -> list[str]:
        moves = tier_moves.read_plan(plan)
        problems = tier_moves.ordering_problems(moves)
        if not (moves.leaving or moves.arriving) or problems:
            return problems
        outputs = self.outputs()
        if "table_name" not in outputs:
            return problems  # the first apply: no registry yet, nothing served, nothing to lose
        with self._env():
            store = RegistryStore(
                outputs["table_name"], aws.client("dynamodb", self.region, self._endpoint())
            )
            dedicated = LambdaTraffic(
                aws.client("lambda", self.region, self._endpoint()), outputs["platform_name"]
            )
            return tier_moves.registry_problems(moves, store, dedicated, say)

    def _endpoint(self) -> str | None:
        return self.endpoint_url if self.target == "local" else None

    def destroy(self) -> None:
        code, output = self._run("destroy", force=None, auto_approve=IsFlagged)
        self._check("destroy", code, output)

    def outputs(self) -> dict[str, Any]:
        """``terraform output -json`` as plain values."""
        terraform = Terraform(working_dir=str(self.working_dir))
        with self._env():
            code, out, err = terraform.output_cmd(
                json=IsFlagged, state=str(self.state_path) if self.state_path else None, no_color=IsFlagged
            )
        output = f"{out or ''}{err or ''}"
        self._check("output", code, output)
        return {name: value["value"] for name, value in json.loads(out or "{}").items()}
