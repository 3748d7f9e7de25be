"""Platform settings read from the environment (names owned by :mod:`model_registry.core.contract`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from model_registry.core import contract

DEFAULT_REGION = "us-east-1"
TRUTHY = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Where the registry lives and what the platform allows."""

    table_name: str = contract.table_name(contract.DEFAULT_PLATFORM_NAME)
    bucket_name: str = ""
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    allow_pickle: bool = False
    max_batch_size: int = 1000
    cache_size: int = 2
    platform_name: str = contract.DEFAULT_PLATFORM_NAME

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables, with defaults for what is unset."""
        env = os.environ if environ is None else environ
        platform = env.get(contract.ENV_PLATFORM_NAME) or contract.DEFAULT_PLATFORM_NAME
        return cls(
            platform_name=platform,
            table_name=env.get(contract.ENV_TABLE) or contract.table_name(platform),
            bucket_name=env.get(contract.ENV_BUCKET, ""),
            region=env.get(contract.ENV_REGION) or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            endpoint_url=env.get(contract.ENV_ENDPOINT_URL) or None,
            allow_pickle=env.get(contract.ENV_ALLOW_PICKLE, "").strip().lower() in TRUTHY,
            max_batch_size=int(env.get(contract.ENV_MAX_BATCH_SIZE, "1000")),
            cache_size=int(env.get(contract.ENV_CACHE_SIZE, "2")),
        )
