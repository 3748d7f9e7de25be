"""Terraform checks without AWS: fmt, validate, native `terraform test` with a mocked provider, checkov."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.terraform.conftest import TERRAFORM_DIR

pytestmark = pytest.mark.terraform
MODULE_DIRS = [TERRAFORM_DIR, *sorted((TERRAFORM_DIR / "modules").iterdir())]


def _run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _init(terraform_bin: str, directory: Path) -> None:
    result = _run([terraform_bin, "init", "-backend=false", "-input=false", "-no-color"], directory)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fmt_is_clean(terraform_bin: str) -> None:
    result = _run([terraform_bin, "fmt", "-check", "-recursive", "-diff"], TERRAFORM_DIR)
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}"


@pytest.mark.parametrize("directory", MODULE_DIRS, ids=lambda p: p.name)
def test_validate(terraform_bin: str, directory: Path) -> None:
    _init(terraform_bin, directory)
    result = _run([terraform_bin, "validate", "-no-color"], directory)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "directory", [TERRAFORM_DIR, TERRAFORM_DIR / "modules" / "registry"], ids=lambda p: p.name
)
def test_native_terraform_tests(terraform_bin: str, directory: Path, placeholder_build: Path) -> None:
    _init(terraform_bin, directory)
    args = [terraform_bin, "test", "-no-color"]
    if directory == TERRAFORM_DIR:
        args += ["-var", f"build_dir={placeholder_build}"]
    result = _run(args, directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout


def _checkov() -> str | None:
    candidates = [os.environ.get("CHECKOV_BIN", ""), str(TERRAFORM_DIR.parent / ".venv-tools/bin/checkov")]
    return next((c for c in candidates if c and Path(c).exists()), shutil.which("checkov"))


def test_checkov_reports_no_failed_checks_and_every_skip_has_a_reason(terraform_bin: str) -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.fail("checkov is not installed: `make test` installs it into .venv-tools")
    result = _run(
        [checkov, "-d", ".", "--framework", "terraform", "--skip-download", "--output", "json", "--quiet"],
        TERRAFORM_DIR,
        timeout=600,
    )
    # checkov prints one report object, or a list of them when several frameworks ran.
    start = min((i for i in (result.stdout.find("{"), result.stdout.find("[")) if i >= 0), default=-1)
    assert start >= 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout[start:])
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert not failed, [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in failed]
    skipped = [c for r in reports for c in r.get("results", {}).get("skipped_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 50, result.stdout[-2000:]
    for check in skipped:
        assert check.get("check_result", {}).get("suppress_comment", "").strip(), (
            f"{check['check_id']} has no reason"
        )
