"""The function zip is reproducible and small; layers fit Lambda's limit (built for real in build/lambda)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from model_registry.packaging import (
    FRAMEWORKS,
    LAMBDA_UNZIPPED_LIMIT,
    build_function,
    build_layer,
    check_size,
)
from tests.helpers import REPO_ROOT


def test_function_zip_is_reproducible(tmp_path: Path) -> None:
    first = build_function(tmp_path / "a" / "function.zip")
    second = build_function(tmp_path / "b" / "function.zip")
    assert first.sha256 == second.sha256
    names = zipfile.ZipFile(first.path).namelist()
    assert "functions/handler.py" in names and "model_registry/contract.json" in names
    assert not any(n.startswith("model_registry/local/") for n in names)
    assert first.unzipped_bytes < 1024 * 1024


def test_layers_fit_lambda_and_rezip_identically() -> None:
    out = REPO_ROOT / "build" / "lambda"
    function = build_function(out / "function.zip")
    for framework in FRAMEWORKS:
        layer = build_layer(framework, out, log=lambda m: None)
        again = build_layer(framework, out, log=lambda m: None)
        assert layer.sha256 == again.sha256
        check_size(function, layer)
        total = layer.unzipped_bytes + function.unzipped_bytes
        print(f"{framework}: layer {layer.unzipped_mb:.1f} MB + function = {total / 2**20:.1f} MB unzipped")
        assert total < LAMBDA_UNZIPPED_LIMIT
        names = zipfile.ZipFile(layer.path).namelist()
        assert not any(n.startswith(("python/boto3/", "python/botocore/")) for n in names)
        if framework == "onnx":  # optimized models: onnxruntime and numpy, no scikit-learn, no scipy
            assert not any(n.startswith(("python/sklearn/", "python/scipy/")) for n in names)
            assert any(n.startswith("python/onnxruntime/") for n in names)
        if framework == "xgboost":
            assert not any(n.startswith("python/sklearn/") for n in names), (
                "the XGBoost layer carries scikit-learn"
            )
