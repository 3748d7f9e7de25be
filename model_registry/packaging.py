"""Build the Lambda deployment package and the per-framework dependency layers, reproducibly.

Zips are written with sorted entries, fixed timestamps and permissions, so the same inputs give the
same bytes (and the same ``source_code_hash`` in Terraform). Layers are installed from binary wheels
for the Lambda platform (manylinux x86_64, CPython 3.11 unless another runtime is asked for), whatever
machine builds them; ``build.json`` beside them records that runtime for Terraform and the launcher.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
LAMBDA_PLATFORM = "manylinux2014_x86_64"
LAMBDA_PYTHON = "3.11"
DEFAULT_RUNTIME = f"python{LAMBDA_PYTHON}"
BUILD_MANIFEST = "build.json"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
REPO_ROOT = Path(__file__).resolve().parents[1]
# One dependency layer per serving runtime; a function carries only its own (terraform models.*.framework).
FRAMEWORKS = ("sklearn", "xgboost", "onnx")
# The Lambda Python runtime already ships these; a layer need not carry them.
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "dateutil",
    "six",
    "bin",
    "snapshot_restore_py",
)
# What the local data plane installs in place of the runtime's own (SnapStart hooks from python3.12 on).
RUNTIME_REQUIREMENTS = ("boto3", "botocore", "snapshot-restore-py")
PRUNED_DIRS = {"__pycache__", "tests", "test"}  # not imported at run time; scipy's alone are ~20 MB


@dataclass(frozen=True)
class Artifact:
    """A built zip: where it is, its sha256, and its unzipped size."""

    path: Path
    sha256: str
    unzipped_bytes: int

    @property
    def unzipped_mb(self) -> float:
        return self.unzipped_bytes / 1024 / 1024


def _zip_tree(files: Iterable[tuple[Path, str]], out: Path) -> Artifact:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    total = 0
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for source, arcname in sorted(files, key=lambda pair: pair[1]):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE)
            info.external_attr = (0o755 if source.suffix == ".so" or ".so." in source.name else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = source.read_bytes()
            total += len(data)
            archive.writestr(info, data, compresslevel=6)
    tmp.replace(out)
    return Artifact(out, hashlib.sha256(out.read_bytes()).hexdigest(), total)


def _files_under(
    root: Path, prefix: str, skip: Callable[[Path], bool] = lambda p: False
) -> list[tuple[Path, str]]:
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not (set(rel.parts) & PRUNED_DIRS) and not skip(rel) and path.suffix != ".pyc":
            files.append((path, f"{prefix}{rel.as_posix()}"))
    return files


def build_function(out: Path) -> Artifact:
    """The function zip: the handler and the library (without the local platform and the CLI)."""
    files = _files_under(REPO_ROOT / "functions", "functions/", lambda rel: rel.suffix not in (".py",))
    files += _files_under(
        REPO_ROOT / "model_registry",
        "model_registry/",
        lambda rel: (
            rel.suffix not in (".py", ".json") or rel.parts[0] in ("local",) or rel.name == "examples.py"
        ),
    )
    return _zip_tree(files, out)


def requirements_file(framework: str) -> Path:
    return REPO_ROOT / "functions" / f"requirements-{framework}.txt"


def _pip_install_target(
    target: Path, args: list[str], log: Callable[[str], None], python_version: str = LAMBDA_PYTHON
) -> None:
    if target.exists():
        shutil.rmtree(target)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--disable-pip-version-check",
        "--target",
        str(target),
        "--platform",
        LAMBDA_PLATFORM,
        "--platform",
        "manylinux_2_28_x86_64",
        "--platform",
        "manylinux_2_17_x86_64",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        *args,
    ]
    log(f"pip install --target {target.name} {' '.join(args)}")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pip failed building {target.name}:\n{result.stderr[-3000:]}")


def python_version(runtime: str) -> str:
    """``3.12`` for the Lambda runtime ``python3.12``."""
    if not runtime.startswith("python3."):
        raise ValueError(f"not a Lambda Python runtime: {runtime!r}")
    return runtime.removeprefix("python")


def install_layer(
    framework: str, build_dir: Path, log: Callable[[str], None] = print, runtime: str = DEFAULT_RUNTIME
) -> Path:
    """Install a framework's layer requirements for ``runtime`` into ``build_dir/layer-<framework>``."""
    root = build_dir / f"layer-{framework}"
    stamp = root / ".requirements"
    wanted = f"# {runtime}\n{requirements_file(framework).read_text()}"
    if stamp.exists() and stamp.read_text() == wanted:
        return root
    _pip_install_target(
        root / "python", ["-r", str(requirements_file(framework))], log, python_version(runtime)
    )
    for name in RUNTIME_PROVIDED:
        for path in (root / "python").glob(f"{name}*"):
            if path.name == name or path.name.startswith((f"{name}-", f"python_{name}-")):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    stamp.write_text(wanted)
    return root


def install_runtime(build_dir: Path, log: Callable[[str], None] = print) -> Path:
    """Install boto3, which the Lambda runtime provides, for the local data plane."""
    root = build_dir / "runtime"
    stamp = root / ".requirements"
    if stamp.exists() and stamp.read_text() == "\n".join(RUNTIME_REQUIREMENTS):
        return root
    _pip_install_target(root / "python", list(RUNTIME_REQUIREMENTS), log)
    stamp.write_text("\n".join(RUNTIME_REQUIREMENTS))
    return root


def build_layer(
    framework: str, build_dir: Path, log: Callable[[str], None] = print, runtime: str = DEFAULT_RUNTIME
) -> Artifact:
    """Install and zip one framework's layer for ``runtime``."""
    root = install_layer(framework, build_dir, log, runtime)
    return _zip_tree(_files_under(root / "python", "python/"), build_dir / f"layer-{framework}.zip")


def check_size(function: Artifact, layer: Artifact) -> None:
    """Fail when function plus layer, unzipped, exceed Lambda's 250 MB."""
    total = function.unzipped_bytes + layer.unzipped_bytes
    if total > LAMBDA_UNZIPPED_LIMIT:
        raise RuntimeError(
            f"{layer.path.name} + {function.path.name} unzip to {total / 1024 / 1024:.1f} MB, "
            "over Lambda's 250 MB"
        )


@dataclass(frozen=True)
class Build:
    """What :func:`build_all` built: the function zip and one layer per framework, for ``runtime``."""

    runtime: str
    function: Artifact
    layers: dict[str, Artifact]


def build_all(
    build_dir: Path,
    runtime: str = DEFAULT_RUNTIME,
    frameworks: Iterable[str] = FRAMEWORKS,
    log: Callable[[str], None] = print,
) -> Build:
    """Build the function zip and the framework layers for ``runtime`` into ``build_dir``, and record the
    runtime in its manifest, so Terraform and the launcher never pair layers with another runtime."""
    python_version(runtime)  # refuse a non-Python runtime before any work
    function = build_function(build_dir / "function.zip")
    layers = {framework: build_layer(framework, build_dir, log, runtime) for framework in frameworks}
    write_build_manifest(build_dir, runtime)
    return Build(runtime, function, layers)


def write_build_manifest(build_dir: Path, runtime: str) -> None:
    """Record the runtime the layers in ``build_dir`` were built for (Terraform checks it)."""
    (build_dir / BUILD_MANIFEST).write_text(json.dumps({"runtime": runtime}) + "\n")


def build_runtime(build_dir: Path) -> str:
    """The runtime the layers in ``build_dir`` were built for (builds before the manifest: 3.11)."""
    manifest = build_dir / BUILD_MANIFEST
    return json.loads(manifest.read_text())["runtime"] if manifest.exists() else DEFAULT_RUNTIME
