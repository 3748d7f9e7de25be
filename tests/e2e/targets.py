"""Where the acceptance tests run: the local platform (every `make test`) or a real AWS account
(`make aws-acceptance`). The tests see the same thing on both: an HTTPS or HTTP base URL, a session that
signs requests when the API wants it, the registry's settings, and Lambda and CloudWatch clients."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from local_platform.launcher import register_and_roll_out_examples
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from model_registry.rollout import Rollouts
from tooling.deploy import Deployment
from tooling.packaging import build_all

# The explicit consent `make aws-acceptance` needs: it creates billable resources and destroys them.
CONFIRM_VARIABLE = "AWS_ACCEPTANCE"
CONFIRM_VALUE = "create-and-destroy"
ACCEPTANCE_MODELS = {
    "iris": {"framework": "sklearn", "memory_size": 1024},
    "breast-cancer": {"framework": "xgboost", "memory_size": 1024},
    "diabetes": {"framework": "onnx", "memory_size": 1536},
}


class SigV4Session(requests.Session):
    """A session that signs each request for API Gateway's AWS_IAM authorization (service execute-api)."""

    def __init__(self, region: str) -> None:
        super().__init__()
        self._credentials = boto3.session.Session().get_credentials()
        self._region = region

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = kwargs.pop("data", None)
        if "json" in kwargs:
            body = json.dumps(kwargs.pop("json")).encode()
            kwargs.setdefault("headers", {})["content-type"] = "application/json"
        headers = dict(kwargs.pop("headers", None) or {})
        signed = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(signed)
        return super().request(method, url, data=body, headers=dict(signed.headers), **kwargs)


@dataclass
class Target:
    """A running platform the acceptance tests call."""

    name: str  # local | aws
    url: str
    settings: Settings
    versions: dict[str, int]
    session_factory: Any = requests.Session
    # CloudWatch publishes Lambda's metrics within seconds locally, within minutes on AWS.
    gate_interval_s: float = 8.0
    gate_poll_s: float = 1.0
    settle_s: float = 30.0  # how long an alias change may take to reach every request
    extra: dict[str, Any] = field(default_factory=dict)

    def session(self) -> requests.Session:
        return self.session_factory()

    def client(self, service: str) -> Any:
        return boto3.client(
            service, region_name=self.settings.region, endpoint_url=self.settings.endpoint_url
        )

    def rollouts(self) -> Rollouts:
        return Rollouts(
            RegistryService.from_settings(self.settings),
            self.client("lambda"),
            self.settings.platform_name,
            self.client("cloudwatch"),
            actor=f"acceptance-{self.name}",
        )


def settle(
    session: requests.Session, url: str, body: dict, version: str, timeout_s: float, consecutive: int = 10
) -> list[tuple[int, str]]:
    """Call ``url`` until ``consecutive`` answers in a row are 200 from model ``version``; return every
    answer seen. An alias change reaches traffic after a short propagation delay (the local data plane
    re-reads aliases every 0.2 s; AWS documents no propagation time), so a test that follows a
    rollout waits for it instead of assuming it; fails after ``timeout_s``."""
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + timeout_s
    while len(seen) < consecutive or any(a != (200, version) for a in seen[-consecutive:]):
        last = seen[-consecutive:]
        assert time.monotonic() < deadline, f"traffic never settled on version {version}: {last}"
        response = session.post(url, json=body, timeout=60)
        seen.append((response.status_code, response.headers.get("X-Model-Version", "")))
    return seen


def confirmation_problem() -> str | None:
    """Why `make aws-acceptance` may not run, or None."""
    if os.environ.get(CONFIRM_VARIABLE) != CONFIRM_VALUE:
        return (
            f"the AWS acceptance run creates billable resources in your account and destroys them: set "
            f"{CONFIRM_VARIABLE}={CONFIRM_VALUE} to confirm"
        )
    if boto3.session.Session().get_credentials() is None:
        return "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    if shutil.which("terraform") is None:
        return "terraform is not on PATH"
    return None


@contextmanager
def aws_target(state: Path, repo_root: Path, say: Any = print) -> Iterator[Target]:
    """The platform applied to the real account under a unique name prefix, the example models
    registered and live; everything is destroyed afterwards, also when a step or a test failed."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    prefix = f"acc-{secrets.token_hex(3)}"
    build = repo_root / "build" / "lambda"
    built = build_all(build, log=lambda m: say(f"build: {m}"))
    var_file = state / "acceptance.tfvars.json"
    var_file.write_text(json.dumps({"models": ACCEPTANCE_MODELS}))
    deployment = Deployment(
        "aws",
        region=region,
        state_path=state / "terraform.tfstate",
        var_files=[var_file],
        variables={
            "name_prefix": prefix,
            "region": region,
            "deletion_protection": "false",
            "build_dir": str(build),
            "lambda_runtime": built.runtime,
        },
    )
    say(f"terraform apply in {region} as {prefix} ...")
    deployment.init()
    try:
        deployment.apply()
        outputs = deployment.outputs()
        settings = Settings(
            table_name=outputs["table_name"],
            bucket_name=outputs["bucket_name"],
            region=region,
            platform_name=outputs["platform_name"],
        )
        versions = register_and_roll_out_examples(settings, state, say)
        yield Target(
            name="aws",
            url=outputs["api_endpoint"].rstrip("/"),
            settings=settings,
            versions=versions,
            session_factory=lambda: SigV4Session(region),
            gate_interval_s=180.0,
            gate_poll_s=15.0,
            settle_s=120.0,
            extra={"outputs": outputs},
        )
    finally:
        say(f"terraform destroy {prefix} ...")
        deployment.destroy()
