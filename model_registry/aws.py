"""AWS clients, created once per process from one shared botocore session, with standard retry mode.

Clients come from botocore rather than ``boto3.session.Session().client``: one session loads the
shared endpoint and retry data once for every client, and plain botocore clients skip boto3's
injection of s3transfer into every S3 client. Together that is ~65 ms off each cold start (see
reports/performance_report.md). Uploads use :class:`boto3.s3.transfer.S3Transfer` explicitly.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config

from model_registry.settings import Settings

# Short timeouts: a cold start facing a registry that hangs gives up in ~16 s (3 x 5 s) and answers 503,
# instead of running into the function timeout.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)

_session_lock = threading.Lock()  # botocore sessions are not thread-safe while they create clients


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A cached botocore client; ``endpoint_url`` points at the local emulator when set."""
    with _session_lock:
        return _session().create_client(
            service, region_name=region, endpoint_url=endpoint_url, config=RETRY_CONFIG
        )


def client_for(service: str, settings: Settings) -> Any:
    """The cached client for ``service`` under ``settings``."""
    return client(service, settings.region, settings.endpoint_url)


def reset() -> None:
    """Forget cached clients and the session, e.g. after the environment's credentials or endpoint changed."""
    client.cache_clear()
    _session.cache_clear()
