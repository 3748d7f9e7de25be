"""Build the Lambda deployment package and the per-framework dependency layers, reproducibly.

Zips are written with sorted entries, fixed timestamps and permissions, so the same inputs give the
same bytes (and the same ``source_code_hash`` in Terraform). Layers are installed from binary wheels
for the Lambda platform of the runtime (x86_64, its CPython, and manylinux tags up to the glibc of the
OS the runtime runs on), whatever machine builds them, and every shared object they hold is checked
against that glibc (:mod:`tooling.glibc`): a layer Lambda could not import is never built.
``build.json`` beside them records the runtime and the glibc figures for Terraform and the launcher.
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

from model_registry.core import contract
from tooling.glibc import GlibcReport, GlibcTooNew, GlibcVersion, scan

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
DEFAULT_RUNTIME = contract.DEFAULT_LAMBDA_RUNTIME
BUILD_MANIFEST = "build.json"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
REPO_ROOT = Path(__file__).resolve().parents[1]
# One dependency layer per serving runtime; a function carries only its own (terraform models.*.framework).
LAYER_FRAMEWORKS = contract.LAYER_FRAMEWORKS  # one layer each
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
# What the local data plane installs in place of the runtime's own: the SDK, the SnapStart hooks module,
# and the runtime interface client that Lambda's Python base images run (it talks to the Runtime API).
RUNTIME_REQUIREMENTS = ("boto3", "botocore", "snapshot-restore-py", "awslambdaric==4.2.2")
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


# What the function zip holds, and nothing else: the handler, and the parts of the library that run in
# Lambda. The rollout code, the CLI, the tooling and the local platform stay out (they import packages
# the layers do not ship); tests/integration/test_build.py imports every module of the built zip in a clean
# interpreter with only a layer beside it.
FUNCTION_PACKAGES = ("functions", "model_registry/core", "model_registry/serving")
# Of the registry, the read side only: registering (service.py) and compiling (optimize.py) stay out.
FUNCTION_FILES = (
    "model_registry/__init__.py",
    "model_registry/registry/__init__.py",
    "model_registry/registry/store.py",
    "model_registry/registry/artifacts.py",
    "model_registry/registry/loading.py",
)


def build_function(out: Path) -> Artifact:
    """The function zip: FUNCTION_PACKAGES and FUNCTION_FILES (Python and JSON files only)."""
    files = [(REPO_ROOT / rel, rel) for rel in FUNCTION_FILES]
    for package in FUNCTION_PACKAGES:
        files += _files_under(
            REPO_ROOT / package, f"{package}/", lambda rel: rel.suffix not in (".py", ".json")
        )
    return _zip_tree(files, out)


def requirements_file(framework: str) -> Path:
    return REPO_ROOT / "functions" / f"requirements-{framework}.txt"


def wheel_platforms(runtime: str) -> list[str]:
    """pip ``--platform`` tags for ``runtime``: x86_64 manylinux up to the glibc of its OS (pip does not
    widen ``manylinux_2_X`` to older glibc levels by itself)."""
    floor = GlibcVersion.parse(contract.lambda_runtime(runtime).glibc)
    return ["manylinux2014_x86_64", *(f"manylinux_2_{minor}_x86_64" for minor in range(17, floor.minor + 1))]


def _pip_install_target(target: Path, args: list[str], log: Callable[[str], None], runtime: str) -> None:
    if target.exists():
        shutil.rmtree(target)
    facts = contract.lambda_runtime(runtime)
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
        *(option for platform in wheel_platforms(runtime) for option in ("--platform", platform)),
        "--implementation",
        "cp",
        "--python-version",
        facts.python_version,
        "--only-binary=:all:",
        *args,
    ]
    log(f"pip install --target {target.name} {' '.join(args)} ({runtime}: glibc {facts.glibc} and older)")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"pip failed building {target.parent.name} for {runtime}, which runs on {facts.os} "
            f"(glibc {facts.glibc}): a pinned package may have no wheel that old a glibc can load\n"
            f"{result.stderr[-3000:]}"
        )


def check_glibc(root: Path, runtime: str, what: str) -> GlibcReport:
    """Scan ``root``'s shared objects; :class:`GlibcTooNew` if the runtime's OS cannot load one."""
    facts = contract.lambda_runtime(runtime)
    available = GlibcVersion.parse(facts.glibc)
    report = scan(root)
    too_new = report.too_new_for(available)
    if too_new:
        raise GlibcTooNew(what, runtime, facts.os, available, too_new)
    return report


def python_version(runtime: str) -> str:
    """``3.12`` for the Lambda runtime ``python3.12``; ValueError for a runtime the platform does not know."""
    return contract.lambda_runtime(runtime).python_version


def install_layer(
    framework: str, build_dir: Path, log: Callable[[str], None] = print, runtime: str = DEFAULT_RUNTIME
) -> Path:
    """Install a framework's layer requirements for ``runtime`` into ``build_dir/layer-<framework>``;
    :class:`~tooling.glibc.GlibcTooNew` if a shared object needs a newer glibc than its OS has."""
    root = build_dir / f"layer-{framework}"
    stamp = root / ".requirements"
    wanted = f"# {runtime}\n{requirements_file(framework).read_text()}"
    if stamp.exists() and stamp.read_text() == wanted:
        return root
    stamp.unlink(missing_ok=True)
    _pip_install_target(root / "python", ["-r", str(requirements_file(framework))], log, runtime)
    for name in RUNTIME_PROVIDED:
        for path in (root / "python").glob(f"{name}*"):
            if path.name == name or path.name.startswith((f"{name}-", f"python_{name}-")):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    check_glibc(root / "python", runtime, f"layer-{framework}")
    stamp.write_text(wanted)
    return root


def install_runtime(
    build_dir: Path, runtime: str = DEFAULT_RUNTIME, log: Callable[[str], None] = print
) -> Path:
    """Install what the Lambda ``runtime`` itself provides (boto3, the runtime interface client) for the
    local data plane, into ``build_dir/runtime-<runtime>``."""
    root = build_dir / f"runtime-{runtime}"
    stamp = root / ".requirements"
    wanted = "\n".join((runtime, *RUNTIME_REQUIREMENTS))
    if stamp.exists() and stamp.read_text() == wanted:
        return root
    stamp.unlink(missing_ok=True)
    _pip_install_target(root / "python", list(RUNTIME_REQUIREMENTS), log, runtime)
    stamp.write_text(wanted)
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
    """What :func:`build_all` built: the function zip and one layer per framework, for ``runtime``,
    with the glibc figures of each layer."""

    runtime: str
    function: Artifact
    layers: dict[str, Artifact]
    glibc: dict[str, GlibcReport]


def build_all(
    build_dir: Path,
    runtime: str = DEFAULT_RUNTIME,
    frameworks: Iterable[str] = LAYER_FRAMEWORKS,
    log: Callable[[str], None] = print,
) -> Build:
    """Build the function zip and the framework layers for ``runtime`` into ``build_dir``, and record the
    runtime in its manifest, so Terraform and the launcher never pair layers with another runtime."""
    python_version(runtime)  # refuse an unknown runtime before any work
    function = build_function(build_dir / "function.zip")
    layers, reports = {}, {}
    for framework in frameworks:
        layers[framework] = build_layer(framework, build_dir, log, runtime)
        reports[framework] = check_glibc(build_dir / f"layer-{framework}" / "python", runtime, framework)
    write_build_manifest(build_dir, runtime, reports)
    return Build(runtime, function, layers, reports)


def write_build_manifest(
    build_dir: Path, runtime: str, reports: dict[str, GlibcReport] | None = None
) -> None:
    """Record the runtime the layers in ``build_dir`` were built for and the newest glibc each needs
    (Terraform refuses a runtime whose OS has an older one)."""
    facts = contract.lambda_runtime(runtime)
    layers = {}
    for framework, report in (reports or {}).items():
        highest = report.highest
        layers[framework] = {
            "shared_objects": report.objects,
            "highest_glibc": str(highest.version) if highest else None,
            "highest_glibc_object": highest.path if highest else None,
        }
    manifest = {"runtime": runtime, "os": facts.os, "os_glibc": facts.glibc, "layers": layers}
    (build_dir / BUILD_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_build_manifest(build_dir: Path) -> dict:
    """The manifest :func:`write_build_manifest` wrote; FileNotFoundError when the folder holds no build."""
    manifest = build_dir / BUILD_MANIFEST
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing: run `make build`")
    return json.loads(manifest.read_text())


def build_runtime(build_dir: Path) -> str:
    """The runtime the layers in ``build_dir`` were built for."""
    return str(read_build_manifest(build_dir)["runtime"])
