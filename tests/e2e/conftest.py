"""One local platform per test session: emulator, Terraform apply, registration, data plane."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from model_registry.examples import ExampleModel
from model_registry.local.launcher import (
    LocalPlatform,
    _environ,
    local_platform,
    register_and_roll_out_examples,
)
from model_registry.packaging import build_all
from model_registry.settings import Settings
from tests.helpers import REPO_ROOT


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


@pytest.fixture(scope="session")
def running(
    tmp_path_factory: pytest.TempPathFactory, examples: dict[str, ExampleModel], terraform_bin: str
) -> Iterator[RunningPlatform]:
    """Needs terraform like the Terraform tests: a failure under REQUIRE_TERRAFORM=1, else a visible skip."""
    build_all(REPO_ROOT / "build" / "lambda", log=lambda m: None)
    state = tmp_path_factory.mktemp("platform")
    pids: list[int] = []
    with local_platform(state, say=lambda m: None) as platform:
        with _environ(platform.env):
            settings = Settings.from_env()
            versions = register_and_roll_out_examples(settings, state, lambda m: None)
        # Tests pass the emulator's endpoint explicitly: nothing leaks into other tests' environment.
        try:
            yield RunningPlatform(platform, settings, versions)
        finally:
            pids = [platform.emulator.process.pid, *platform.server.plane.worker_pids()]
    left = [pid for pid in pids if _alive(pid)]
    assert not left, f"processes left behind after the platform stopped: {left}"
