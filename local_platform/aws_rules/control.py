"""Local-only calls to the emulator: what AWS services do among themselves, which no public API offers.

Lambda publishes ``AWS/Lambda`` metrics and moves SnapStart versions between states; locally the data
plane does both, and tests age a version as 14 idle days would.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from urllib.parse import quote

from local_platform.aws_rules.cloudwatch_rules import AWS_SERVICE_HEADER

__all__ = ["AWS_SERVICE_HEADER", "set_version_state"]


def _post(emulator_url: str, service: str, region: str, path: str, body: dict) -> dict:
    # moto's server picks the service from the credential scope of the Authorization header.
    scope = f"testing/{datetime.now(UTC):%Y%m%d}/{region}/{service}/aws4_request"
    request = urllib.request.Request(
        f"{emulator_url}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=local",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def set_version_state(
    emulator_url: str,
    function_name: str,
    version: str,
    state: str,
    reason: str = "",
    reason_code: str = "",
    region: str = "us-east-1",
) -> None:
    """Set a published Lambda version's ``State`` (Pending, Active, Inactive or Failed)."""
    path = f"/_local/functions/{quote(function_name)}/versions/{quote(version)}/state"
    _post(
        emulator_url,
        "lambda",
        region,
        path,
        {"State": state, "StateReason": reason, "StateReasonCode": reason_code},
    )
