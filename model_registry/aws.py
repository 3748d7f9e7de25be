"""boto3 clients, created once per process with standard retry mode."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from model_registry.settings import Settings

# Short timeouts: a cold start facing a registry that hangs gives up in ~16 s (3 x 5 s) and answers 503,
# instead of running into the function timeout.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)


@cache
def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A cached boto3 client; ``endpoint_url`` points at the local emulator when set."""
    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=endpoint_url, config=RETRY_CONFIG
    )


def client_for(service: str, settings: Settings) -> Any:
    """The cached client for ``service`` under ``settings``."""
    return client(service, settings.region, settings.endpoint_url)
