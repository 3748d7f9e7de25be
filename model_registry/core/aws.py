"""AWS clients, created once per process from one shared botocore session, with standard retry mode.

Clients come from botocore rather than ``boto3.session.Session().client``: one session loads the
shared endpoint and retry data once for every client, and plain botocore clients skip boto3's
injection of s3transfer into every S3 client. Together that is ~65 ms off each cold start (see
reports/performance_report.md). Uploads use :class:`boto3.s3.transfer.S3Transfer` explicitly.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config

from model_registry.core import contract
from model_registry.core.settings import Settings

# Operators' tools (modelctl, registration): short timeouts, three attempts.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
# The Lambda handler: its first call against a registry that hangs must give up inside Lambda's 10 s init
# phase (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html), leaving room for
# the imports (~1.5 s): 2 attempts x (1 s connect + 2 s read) + the standard mode's backoff (< 1 s) is
# at most 7 s, after which init ends and requests answer 503 with Retry-After until the registry answers.
SERVING_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=2)
CONFIGS = {"operator": RETRY_CONFIG, "serving": SERVING_CONFIG}

_session_lock = threading.Lock()  # botocore sessions are not thread-safe while they create clients


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


# Parameters left out of the call log: payloads, and the function environment (it may hold secrets).
_UNLOGGED = {"Body", "Payload", "ZipFile", "Environment"}


@cache
def client(
    service: str,
    region: str,
    endpoint_url: str | None = None,
    profile: str = "operator",
    *,
    config: Config | None = None,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """A cached botocore client; ``endpoint_url`` points at the local emulator when set; ``profile``
    picks the timeouts and retries (:data:`CONFIGS`), unless ``config`` is given; ``credentials``
    (access key id, secret) replace the environment's, as the local platform's own clients need."""
    key_id, secret = credentials or (None, None)
    with _session_lock:
        created = _session().create_client(
            service,
            region_name=region,
            endpoint_url=endpoint_url,
            config=config or CONFIGS[profile],
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
    log = os.environ.get(contract.ENV_AWS_CALL_LOG)
    if log:
        created.meta.events.register("before-parameter-build", _call_logger(log, created))
    return created


def _call_logger(path: str, created: Any) -> Any:
    """A botocore handler appending each call (service, operation, region, parameters) to ``path``."""
    service = created.meta.service_model.signing_name

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        line = {
            "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            "service": service,
            "operation": model.name,
            "region": created.meta.region_name,
            "params": {k: v for k, v in params.items() if k not in _UNLOGGED},
        }
        data = (json.dumps(line, default=str) + "\n").encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, data)  # one write per line: lines of concurrent processes stay whole
        finally:
            os.close(descriptor)

    return record


def client_for(service: str, settings: Settings, profile: str = "operator") -> Any:
    """The cached client for ``service`` under ``settings``."""
    return client(service, settings.region, settings.endpoint_url, profile)


def reset() -> None:
    """Forget cached clients and the session, e.g. after the environment's credentials or endpoint changed."""
    client.cache_clear()
    _session.cache_clear()


@contextmanager
def environment(values: Mapping[str, str], without: Iterable[str] = ()) -> Iterator[None]:
    """Run with ``values`` added to (and ``without`` removed from) ``os.environ``, clients created
    afresh; everything restored afterwards. Not thread-safe: for tools and tests, not the handler."""
    saved = dict(os.environ)
    os.environ.update(values)
    for name in without:
        os.environ.pop(name, None)
    reset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset()
