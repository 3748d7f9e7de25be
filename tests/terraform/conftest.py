"""Terraform tests need the terraform binary and a CLI config; CI (REQUIRE_TERRAFORM=1) fails without them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from model_registry.packaging import write_build_manifest
from tests.helpers import REPO_ROOT

TERRAFORM_DIR = REPO_ROOT / "terraform"


@pytest.fixture(scope="session")
def placeholder_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny stand-ins for function.zip and the layers, for plans with a mocked provider."""
    folder = tmp_path_factory.mktemp("placeholder-build")
    # py312/: the same, recorded as built for python3.12 (terraform/tests: SnapStart runs).
    for target in (folder, folder / "py312"):
        target.mkdir(exist_ok=True)
        for name in ("function", "layer-sklearn", "layer-xgboost"):
            with zipfile.ZipFile(target / f"{name}.zip", "w") as archive:
                archive.writestr("placeholder.txt", name)
    write_build_manifest(folder / "py312", "python3.12")
    return folder
