"""The registry against moto in server mode on 127.0.0.1: concurrency and the CLI as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from examples.models import ExampleModel
from model_registry.core import contract
from model_registry.core.settings import Settings
from model_registry.registry.service import RegistryService

pytestmark = pytest.mark.integration


def test_sixteen_concurrent_registrations_get_versions_1_to_16(
    server_settings: Settings, examples: dict[str, ExampleModel]
) -> None:
    service = RegistryService.from_settings(server_settings)
    artifact = examples["iris"].artifact

    def register(i: int) -> int:
        return service.register("iris", artifact, description=f"writer {i}", progress=False).version

    with ThreadPoolExecutor(max_workers=16) as pool:
        versions = list(pool.map(register, range(16)))
    assert sorted(versions) == list(range(1, 17))
    records = service.store.list_versions("iris")
    assert [r.version for r in records] == list(range(16, 0, -1))
    # every writer's record survived, none overwritten
    assert sorted(r.description for r in records) == sorted(f"writer {i}" for i in range(16))
    assert service.store.list_models()[0].latest_version == 16


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        contract.ENV_TABLE: settings.table_name,
        contract.ENV_BUCKET: settings.bucket_name,
        contract.ENV_ENDPOINT_URL: settings.endpoint_url or "",
        contract.ENV_REGION: settings.region,
    }


def _modelctl(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_registry.cli", *args],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_register_list_show(server_settings: Settings, examples: dict[str, ExampleModel]) -> None:
    iris = examples["iris"]
    metrics = iris.artifact.with_name("iris.metrics.json")
    result = _modelctl(
        server_settings,
        "register",
        "iris",
        str(iris.artifact),
        "--tag",
        "team=ds",
        "--metrics",
        str(metrics),
        "--description",
        "first",
    )
    assert result.returncode == 0, result.stderr
    assert "registered iris version 1" in result.stdout
    models = _modelctl(server_settings, "models")
    assert "iris" in models.stdout and "LATEST_VERSION" in models.stdout
    for name in ("iris-b", "iris-c"):
        assert _modelctl(server_settings, "register", name, str(iris.artifact)).returncode == 0
    first = _modelctl(server_settings, "models", "--limit", "2")
    assert [line.split()[0] for line in first.stdout.splitlines()[1:]] == ["iris", "iris-b"]
    assert "--next-token iris-b" in first.stderr
    rest = _modelctl(server_settings, "--json", "models", "--limit", "2", "--next-token", "iris-b")
    assert [m["model_name"] for m in json.loads(rest.stdout)["models"]] == ["iris-c"]
    assert json.loads(rest.stdout)["next_token"] is None
    assert len(_modelctl(server_settings, "models", "--all").stdout.splitlines()) == 4
    assert _modelctl(server_settings, "models", "--limit", "5000").returncode == 2
    shown = _modelctl(server_settings, "--json", "show", "iris", "1")
    assert '"accuracy"' in shown.stdout and '"team": "ds"' in shown.stdout
    versions = _modelctl(server_settings, "versions", "iris")
    assert versions.stdout.splitlines()[1].split()[0] == "1"


def _nothing_written(settings: Settings) -> bool:
    ddb = boto3.client("dynamodb", region_name=settings.region, endpoint_url=settings.endpoint_url)
    s3 = boto3.client("s3", region_name=settings.region, endpoint_url=settings.endpoint_url)
    items = ddb.scan(TableName=settings.table_name)["Items"]
    objects = s3.list_objects_v2(Bucket=settings.bucket_name).get("Contents", [])
    return not items and not objects


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "unknown format",
        "corrupt file",
        "name ../x",
        "name 300 chars",
        "wrong framework",
        "bad tag",
    ],
)
def test_cli_bad_input_fails_with_one_line_and_writes_nothing(
    server_settings: Settings, examples: dict[str, ExampleModel], tmp_path: Path, case: str
) -> None:
    good = str(examples["iris"].artifact)
    unknown = tmp_path / "model.txt"
    unknown.write_text("this is not a model")
    corrupt = tmp_path / "model.skops"
    corrupt.write_bytes(examples["iris"].artifact.read_bytes()[:500])
    args = {
        "missing file": ["iris", str(tmp_path / "nope.skops")],
        "unknown format": ["iris", str(unknown)],
        "corrupt file": ["iris", str(corrupt)],
        "name ../x": ["../x", good],
        "name 300 chars": ["a" * 300, good],
        "wrong framework": ["iris", good, "--framework", "xgboost"],
        "bad tag": ["iris", good, "--tag", "bad key=x"],
    }[case]
    result = _modelctl(server_settings, "register", *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("modelctl: error:")
    assert _nothing_written(server_settings)
