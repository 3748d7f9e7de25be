"""Terraform tests need the terraform binary and a CLI config; CI (REQUIRE_TERRAFORM=1) fails without them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

TERRAFORM_DIR = REPO_ROOT / "terraform"


@pytest.fixture(scope="session")
def placeholder_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny stand-ins for function.zip and the layers, for plans with a mocked provider."""
    folder = tmp_path_factory.mktemp("placeholder-build")
    for name in ("function", "layer-sklearn", "layer-xgboost"):
        with zipfile.ZipFile(folder / f"{name}.zip", "w") as archive:
            archive.writestr("placeholder.txt", name)
    return folder
