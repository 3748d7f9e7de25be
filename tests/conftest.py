"""Fixtures: AWS credentials that can never reach AWS, in-process moto, moto server, example models."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.models import ExampleModel, train_all
from local_platform.emulator import create_registry
from model_registry.core import aws
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService
from tests.helpers import moto_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="where tests/e2e/test_acceptance.py runs: the local platform (default), or a real AWS account "
        "(make aws-acceptance: your credentials, and AWS_ACCEPTANCE=create-and-destroy)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Never talk to real AWS from tests, but for the acceptance run that is asked for explicitly."""
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if config.getoption("target") == "aws":
        return
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    binary = shutil.which("terraform")
    required = os.environ.get("REQUIRE_TERRAFORM") == "1"
    if binary is None:
        if required:
            pytest.fail("REQUIRE_TERRAFORM=1 but no terraform binary is on PATH")
        pytest.skip("terraform is not on PATH (set REQUIRE_TERRAFORM=1 to make this a failure)")
    config = os.environ.get("TF_CLI_CONFIG_FILE", "")
    if not config or not Path(config).exists():
        message = "TF_CLI_CONFIG_FILE is not set to an existing file: run the tests through `make test`"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExampleModel]:
    """The three example models, really trained once per session."""
    out = tmp_path_factory.mktemp("examples")
    return {e.name: e for e in train_all(out)}


@pytest.fixture
def settings() -> Settings:
    return Settings(table_name="registry-test", bucket_name="artifacts-test", region="us-east-1")


@pytest.fixture
def service(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[RegistryService]:
    """A registry service against in-process moto."""
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset()
    with mock_aws():
        create_registry(settings)
        yield RegistryService.from_settings(settings)
    aws.reset()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto in server mode on 127.0.0.1, shared by the session's integration tests."""
    with moto_server() as url:
        yield url


@pytest.fixture
def server_settings(moto_url: str, request: pytest.FixtureRequest) -> Settings:
    """Settings with a fresh table and bucket on the moto server."""
    suffix = abs(hash(request.node.nodeid)) % 10**8
    settings = Settings(
        table_name=f"registry-{suffix}",
        bucket_name=f"artifacts-{suffix}",
        region="us-east-1",
        endpoint_url=moto_url,
    )
    create_registry(settings)
    return settings


@pytest.fixture
def examples_dir(examples: dict[str, ExampleModel]) -> Path:
    return next(iter(examples.values())).artifact.parent
