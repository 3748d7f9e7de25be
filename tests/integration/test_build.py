"""The function zip is reproducible and small; layers fit Lambda's limit (built for real in build/lambda)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from model_registry.core import contract
from tests.helpers import REPO_ROOT
from tooling.glibc import GlibcTooNew, GlibcVersion, required_glibc
from tooling.packaging import (
    DEFAULT_RUNTIME,
    LAMBDA_UNZIPPED_LIMIT,
    LAYER_FRAMEWORKS,
    Build,
    build_all,
    build_function,
    build_layer,
    check_glibc,
    check_size,
    read_build_manifest,
)


def test_function_zip_is_reproducible(tmp_path: Path) -> None:
    first = build_function(tmp_path / "a" / "function.zip")
    second = build_function(tmp_path / "b" / "function.zip")
    assert first.sha256 == second.sha256
    names = zipfile.ZipFile(first.path).namelist()
    assert "functions/handler.py" in names and "model_registry/core/contract.json" in names
    assert not any(n.startswith("local_platform/") for n in names)
    assert first.unzipped_bytes < 1024 * 1024


def test_layers_fit_lambda_and_rezip_identically() -> None:
    out = REPO_ROOT / "build" / "lambda"
    function = build_function(out / "function.zip")
    for framework in LAYER_FRAMEWORKS:
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


@pytest.fixture(scope="module")
def built() -> Build:
    """build/lambda built once for the default runtime (layers are reused when their requirements have
    not changed), shared by the tests that read the build."""
    return build_all(REPO_ROOT / "build" / "lambda", DEFAULT_RUNTIME, log=lambda m: None)


def test_layers_load_on_the_runtime_os_and_are_refused_for_amazon_linux_2(built: Build) -> None:
    """The build reads every shared object's glibc needs: they fit Amazon Linux 2023 (python3.12+), and
    the same files are refused for python3.11, whose Amazon Linux 2 has glibc 2.26."""
    out = REPO_ROOT / "build" / "lambda"
    floor = GlibcVersion.parse(contract.lambda_runtime(DEFAULT_RUNTIME).glibc)
    manifest = read_build_manifest(out)
    assert manifest["runtime"] == DEFAULT_RUNTIME and manifest["os_glibc"] == str(floor)
    for framework, report in built.glibc.items():
        highest = report.highest
        print(
            f"{framework}: {report.objects} shared objects, newest glibc {highest.version} ({highest.path})"
        )
        assert report.objects >= 20 and highest.version <= floor
        assert manifest["layers"][framework] == {
            "shared_objects": report.objects,
            "highest_glibc": str(highest.version),
            "highest_glibc_object": highest.path,
        }
    with pytest.raises(GlibcTooNew, match=r"Amazon Linux 2, glibc 2\.26") as refused:
        check_glibc(out / "layer-sklearn" / "python", "python3.11", "layer-sklearn")
    assert any(n.path.startswith("numpy/") for n in refused.value.needs)
    assert all(n.version > GlibcVersion(2, 26) for n in refused.value.needs)


def test_a_build_for_python311_fails_at_the_build_not_on_lambda(tmp_path: Path) -> None:
    """Only wheels for glibc 2.26 and older are allowed for Amazon Linux 2: the pinned numpy has none."""
    with pytest.raises(RuntimeError, match=r"python3\.11, which runs on Amazon Linux 2 \(glibc 2\.26\)"):
        build_layer("onnx", tmp_path, log=lambda m: None, runtime="python3.11")
    assert not (tmp_path / "layer-onnx.zip").exists()


def test_glibc_needs_are_read_from_elf_version_sections(tmp_path: Path) -> None:
    needed = required_glibc(Path(sys.executable).resolve())  # this interpreter links against glibc
    assert needed is not None and GlibcVersion(2, 2) < needed <= GlibcVersion(2, 99)
    (tmp_path / "not-elf.so").write_bytes(b"#!/bin/sh\n")
    assert required_glibc(tmp_path / "not-elf.so") is None
    assert GlibcVersion.parse("GLIBC_2.2.5") == GlibcVersion(2, 2) < GlibcVersion.parse("2.17")


def _modules(root: Path) -> list[str]:
    return sorted(
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for path in root.rglob("*.py")
    )


@pytest.mark.parametrize("framework", LAYER_FRAMEWORKS)
def test_every_module_of_the_function_zip_imports_with_only_its_layer(
    tmp_path: Path, framework: str, built: Build
) -> None:
    """What Lambda has: the zip, one framework layer and the runtime's own boto3, on the runtime's Python,
    isolated from this checkout and its virtualenv (``-I``). A module that needs the CLI's, the tooling's
    or the local platform's packages fails here, not in production."""
    from local_platform.runtime import interpreter_for
    from tooling.packaging import install_runtime

    out = REPO_ROOT / "build" / "lambda"
    code = tmp_path / "task"
    with zipfile.ZipFile(built.function.path) as archive:
        archive.extractall(code)
    assert sorted(p.name for p in code.iterdir()) == ["functions", "model_registry"]
    assert sorted(p.name for p in (code / "model_registry").iterdir()) == [
        "__init__.py",
        "core",
        "registry",
        "serving",
    ]  # rollout/ and cli/ run on operators' machines only, and so does registering:
    assert sorted(p.name for p in (code / "model_registry" / "registry").iterdir()) == [
        "__init__.py",
        "artifacts.py",
        "loading.py",
        "store.py",
    ]
    own_loaders = {
        f"model_registry.serving.loaders.{other}" for other in LAYER_FRAMEWORKS if other != framework
    }
    modules = [m for m in _modules(code) if m not in own_loaders]
    paths = [
        code,
        out / f"layer-{framework}" / "python",
        install_runtime(out, DEFAULT_RUNTIME, log=lambda m: None) / "python",
    ]
    script = "import importlib\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\nprint('ok')"
    probe = [
        interpreter_for(DEFAULT_RUNTIME),
        "-I",
        "-c",
        f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n{script}",
    ]
    result = subprocess.run(
        [*probe, *modules],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok" and len(modules) >= 15
