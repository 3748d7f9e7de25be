"""Shared test helpers: emulator set-up, registry tables and buckets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local_platform.emulator import Emulator

REPO_ROOT = Path(__file__).resolve().parents[1]
# The trust policy of a Lambda execution role, as Terraform's model_endpoint module writes it.
LAMBDA_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
        ],
    }
)


@contextmanager
def moto_server() -> Iterator[str]:
    """Run moto in server mode on 127.0.0.1 for the duration of the block; yield its URL."""
    with Emulator() as emulator:
        yield emulator.url


def require_interpreter(runtime: str) -> str:
    """The local interpreter for a Lambda ``runtime``; a failure under REQUIRE_SNAPSTART=1 (CI) when there
    is none, else a skip with the reason."""
    import os

    import pytest

    from local_platform.runtime import RuntimeUnavailable, interpreter_for

    try:
        return interpreter_for(runtime)
    except RuntimeUnavailable as exc:
        if os.environ.get("REQUIRE_SNAPSTART") == "1":
            pytest.fail(f"REQUIRE_SNAPSTART=1 but {exc}")
        pytest.skip(f"{exc} (set REQUIRE_SNAPSTART=1 to make this a failure)")


def broken_model(X: Any, y: Any, path: Path) -> Path:
    """A model that loads with a valid signature (the features of ``X``) but raises ValueError on every
    prediction: its pipeline's last step was fitted on one feature more than the first step passes on."""
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression(max_iter=200).fit(np.column_stack([X, X[:, :1]]), y)
    sio.dump(Pipeline([("scale", StandardScaler().fit(X)), ("model", model)]), path)
    return path
