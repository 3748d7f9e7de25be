"""No secret in the code: detect-secrets over every tracked file. The only credentials anywhere are
the emulator's dummy ones, which no AWS endpoint accepts."""

from __future__ import annotations

import hashlib
import subprocess

from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

from local_platform.emulator import DUMMY_CREDENTIALS
from tests.helpers import REPO_ROOT

# Dummy values the tests and the local platform use on purpose (moto accepts anything).
ALLOWED = {hashlib.sha1(v.encode()).hexdigest() for v in (*DUMMY_CREDENTIALS.values(), "x", "t")}


def test_tracked_files_hold_no_secrets() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(files) > 50
    secrets = SecretsCollection(root=str(REPO_ROOT))
    with default_settings():
        for name in files:
            if not name.endswith((".png", ".zip")):
                secrets.scan_file(name)
    found = [
        f"{path}:{item['line_number']} {item['type']}"
        for path, items in secrets.json().items()
        for item in items
        if item["hashed_secret"] not in ALLOWED
    ]
    assert not found, found


def test_the_scan_would_catch_a_key(tmp_path) -> None:
    leaked = tmp_path / "settings.py"
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY9"  # pragma: allowlist secret
    planted = f'aws_secret_access_key = "{key}"'
    leaked.write_text(planted + "\n")
    secrets = SecretsCollection(root=str(tmp_path))
    with default_settings():
        secrets.scan_file("settings.py")
    assert secrets.json(), "detect-secrets found nothing in a file holding an AWS secret key"
