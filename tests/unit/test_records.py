from __future__ import annotations

import pytest

from model_registry.core.errors import InvalidName, InvalidTag
from model_registry.core.records import ModelVersion, Signature, validate_model_name, validate_tags


@pytest.mark.parametrize("name", ["iris", "breast-cancer", "m1", "a" * 48])
def test_valid_names(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../x", "x/../../y", "a" * 300, "a" * 49, "Iris", "-x", "x-", "x_y", "x y", "x\n", "ü", "a.b"],
)
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_model_name(name)
    assert "\n" not in info.value.message and len(info.value.message) < 200


@pytest.mark.parametrize("tags", [{"a/../b\n": "x"}, {"k": "v\x00"}, {"k": "v" * 300}, {"": "v"}])
def test_invalid_tags_are_refused(tags: dict[str, str]) -> None:
    with pytest.raises(InvalidTag):
        validate_tags(tags)


def test_item_round_trip_keeps_every_field() -> None:
    record = ModelVersion(
        model_name="iris",
        version=3,
        framework="sklearn",
        artifact_format="skops",
        s3_key="models/iris/ab.skops",
        sha256="ab" * 32,
        size_bytes=123,
        signature=Signature(4, ["a", "b", "c", "d"], "float64", "classification", [0, 1, 2]),
        metrics={"accuracy": 0.97},
        tags={"team": "ds"},
        description="d",
        created_at="2026-01-01T00:00:00Z",
        created_by="me",
        source_commit="abc",
        status="registered",
    )
    assert ModelVersion.from_item(record.to_item()) == record
