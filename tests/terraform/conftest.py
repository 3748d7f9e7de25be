"""Terraform tests need the terraform binary and a CLI config; CI (REQUIRE_TERRAFORM=1) fails without them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tooling.glibc import GlibcNeed, GlibcReport, GlibcVersion
from tooling.packaging import write_build_manifest

TERRAFORM_DIR = REPO_ROOT / "terraform"


@pytest.fixture(scope="session")
def placeholder_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny stand-ins for function.zip and the layers, for plans with a mocked provider: built for the
    default runtime (python3.12), and in sub-folders the builds the plan must refuse or accept."""
    folder = tmp_path_factory.mktemp("placeholder-build")
    scanned = GlibcReport(objects=0, needs=())
    too_new = GlibcReport(1, (GlibcNeed("python/numpy/_core/_multiarray_umath.so", GlibcVersion(2, 35)),))
    builds = {
        folder: ("python3.12", {"sklearn": scanned, "xgboost": scanned, "onnx": scanned}),
        folder / "py311": ("python3.11", {"sklearn": scanned, "xgboost": scanned, "onnx": scanned}),
        # a layer the build tooling never produces: Terraform is the second line of defence
        folder / "glibc-too-new": ("python3.12", {"sklearn": too_new, "xgboost": scanned, "onnx": scanned}),
        folder / "unscanned": ("python3.12", {}),  # a build from before the glibc scan
    }
    for target, (runtime, reports) in builds.items():
        target.mkdir(exist_ok=True)
        for name in ("function", "layer-sklearn", "layer-xgboost", "layer-onnx"):
            with zipfile.ZipFile(target / f"{name}.zip", "w") as archive:
                archive.writestr("placeholder.txt", name)
        write_build_manifest(target, runtime, reports)
    return folder
