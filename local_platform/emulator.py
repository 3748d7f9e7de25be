"""Start and stop the emulator (moto in server mode, see moto_extensions) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3

from model_registry.core import contract
from model_registry.core.settings import Settings

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """preexec_fn: have the kernel send SIGTERM to the child when its parent dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def is_up(url: str) -> bool:
    """Whether a moto server answers at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


class Emulator:
    """A moto server child process; stops with :meth:`stop` or when the parent exits."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Emulator:
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        server = [sys.executable, "-m", "local_platform.moto_extensions"]
        self.process = subprocess.Popen(
            [*server, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **DUMMY_CREDENTIALS},
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while not is_up(self.url):
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto server did not answer on {self.url} within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_registry(settings: Settings) -> None:
    """Create the registry table and artifact bucket in the emulator as Terraform's registry module does
    (for tools and tests that need a registry without applying Terraform)."""
    ddb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)
    ddb.create_table(
        TableName=settings.table_name,
        AttributeDefinitions=[
            {"AttributeName": contract.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": contract.SORT_KEY, "AttributeType": "N"},
            {"AttributeName": contract.CATALOG_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": contract.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": contract.SORT_KEY, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": contract.CATALOG_INDEX,
                "KeySchema": [
                    {"AttributeName": contract.CATALOG_KEY, "KeyType": "HASH"},
                    {"AttributeName": contract.PARTITION_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = boto3.client("s3", region_name=settings.region, endpoint_url=settings.endpoint_url)
    s3.create_bucket(Bucket=settings.bucket_name)
