"""Terraform tests need the terraform binary and a CLI config; CI (REQUIRE_TERRAFORM=1) fails without them."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

TERRAFORM_DIR = REPO_ROOT / "terraform"


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
def placeholder_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny stand-ins for function.zip and the layers, for plans with a mocked provider."""
    folder = tmp_path_factory.mktemp("placeholder-build")
    for name in ("function", "layer-sklearn", "layer-xgboost"):
        with zipfile.ZipFile(folder / f"{name}.zip", "w") as archive:
            archive.writestr("placeholder.txt", name)
    return folder
