"""boto3 clients, created once per process with standard retry mode."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from model_registry.settings import Settings

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A cached boto3 client; ``endpoint_url`` points at the local emulator when set."""
    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=endpoint_url, config=RETRY_CONFIG
    )


def client_for(service: str, settings: Settings) -> Any:
    """The cached client for ``service`` under ``settings``."""
    return client(service, settings.region, settings.endpoint_url)
