"""`make aws-acceptance` refuses to touch an AWS account without explicit consent and credentials."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO_ROOT


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/e2e/test_acceptance.py",
            "--target",
            "aws",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_aws_run_needs_consent_then_credentials() -> None:
    refused = _run()
    assert refused.returncode == 2 and "AWS_ACCEPTANCE=create-and-destroy" in refused.stdout + refused.stderr
    no_credentials = _run(
        AWS_ACCEPTANCE="create-and-destroy",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    assert no_credentials.returncode == 2
    assert "no AWS credentials" in no_credentials.stdout + no_credentials.stderr
