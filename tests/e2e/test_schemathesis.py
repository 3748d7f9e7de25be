"""Property-based requests generated from api/openapi.yaml by schemathesis, against the local platform.

Every operation is fuzzed with schema-valid (positive) and schema-breaking (negative) requests, both with
the random model names and versions the schema allows and with the names and versions really deployed.
No response may be a 5xx, and every response must fit the spec: its status, content type, headers and
body. Negative requests must also be rejected with a 4xx.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import RunningPlatform
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.e2e
EXAMPLES_PER_STRATEGY = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SUMMARY = REPO_ROOT / "build" / "reports" / "schemathesis.json"


def _strategies(running: RunningPlatform) -> list[tuple[str, object, GenerationMode]]:
    """(label, strategy, mode) for every operation, mode and source of path parameters."""
    schema = schemathesis.openapi.from_path(REPO_ROOT / "api" / "openapi.yaml")
    deployed = sorted(running.versions.items())
    out = []
    for index, result in enumerate(schema.get_all_operations()):
        operation = result.ok()
        name, version = deployed[index % len(deployed)]
        wanted = {"name": name, "version": str(version)}
        real = {k: v for k, v in wanted.items() if k in operation.path_parameters}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            out.append((f"{operation.label} {mode.value}", operation.as_strategy(generation_mode=mode), mode))
            out.append(
                (
                    f"{operation.label} {mode.value} deployed={name}",
                    operation.as_strategy(generation_mode=mode, path_parameters=real),
                    mode,
                )
            )
    return out


def _fuzz(
    running: RunningPlatform,
    session: requests.Session,
    label: str,
    strategy: object,
    mode: GenerationMode,
    statuses: Counter[int],
    failures: list[str],
) -> int:
    """Send the strategy's examples; count statuses, collect failed checks. Returns the number sent."""
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    sent = 0

    @settings(
        max_examples=EXAMPLES_PER_STRATEGY,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a failure can be replayed
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: schemathesis.Case) -> None:
        nonlocal sent
        response = case.call(base_url=running.url, session=session, timeout=60)
        sent += 1
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as failure:  # every failing check is collected, then reported
            failures.append(f"{label}: {case.as_curl_command()} -> {response.status_code}: {failure}")

    try:
        exercise()
    except Unsatisfiable:  # negative mode with every parameter pinned: nothing left to break
        assert mode is GenerationMode.NEGATIVE, label
    return sent


def test_generated_requests_get_no_server_error_and_fit_the_spec(running: RunningPlatform) -> None:
    statuses: Counter[int] = Counter()
    per_mode: Counter[str] = Counter()
    per_strategy: dict[str, int] = {}
    failures: list[str] = []
    with requests.Session() as session:
        for label, strategy, mode in _strategies(running):
            sent = _fuzz(running, session, label, strategy, mode, statuses, failures)
            per_mode[mode.value] += sent
            per_strategy[f"{mode.value} {label}"] = sent

    total = sum(statuses.values())
    summary = {
        "requests": total,
        "by_mode": dict(per_mode),
        "by_status": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "failures": len(failures),
        # Negative strategies of operations whose every parameter is pinned have nothing to break.
        "empty_strategies": sorted(k for k, v in per_strategy.items() if v == 0),
        "per_strategy": per_strategy,
    }
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=2))
    print(f"schemathesis: {json.dumps(summary)}")  # the counts in the test log
    assert total >= 500, summary
    # Every operation is exercised with valid requests (a fully pinned one has exactly one to send).
    silent = [k for k, v in per_strategy.items() if k.startswith("positive") and v == 0]
    assert not silent, f"positive strategies that sent nothing: {silent}"
    assert summary["server_errors"] == 0 and not failures, "\n".join(failures[:20])
    assert requests.post(
        f"{running.url}/models/iris/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=30
    ).ok, "the platform stopped serving after the run"
