"""The rollout planner, without AWS: next alias states, provisioned concurrency, the gate's verdicts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model_registry.core.errors import RolloutError
from model_registry.rollout.plan import (
    UNPUBLISHED,
    AliasState,
    Gate,
    Health,
    RolloutEvent,
    canary_target,
    check_steps,
    judge,
    peak_provisioned,
    plan_move,
    previous_stable,
    progressive_targets,
    promote_target,
    provisioned_plan,
    prunable,
    rollback_target,
    step_target,
)

STABLE = AliasState("3", revision_id="r1")
WITH_CANARY = AliasState("3", "4", 0.2, "r2")


def test_a_canary_takes_its_share_next_to_the_stable_version() -> None:
    assert canary_target("iris", STABLE, "4", 20, 2) == AliasState("3", "4", 0.2)
    assert canary_target("iris", STABLE, "4", 100, 2) == AliasState("4")


@pytest.mark.parametrize(
    ("before", "version", "percent", "message"),
    [
        (STABLE, "4", 0, r"canary percentage must be in \(0, 100\]"),
        (STABLE, "4", 100.5, r"canary percentage must be in \(0, 100\]"),
        (WITH_CANARY, "5", 10, "already has a canary"),
        (STABLE, "3", 10, "already live on Lambda version 3"),
    ],
)
def test_a_canary_that_cannot_be_carried_out_is_refused(
    before: AliasState, version: str, percent: float, message: str
) -> None:
    with pytest.raises(RolloutError, match=message):
        canary_target("iris", before, version, percent, 2)


def test_promote_step_and_rollback_targets() -> None:
    assert promote_target("iris", WITH_CANARY) == AliasState("4")
    with pytest.raises(RolloutError, match="no canary to promote"):
        promote_target("iris", STABLE)
    assert step_target("iris", WITH_CANARY, "4", 50) == AliasState("3", "4", 0.5)
    assert step_target("iris", WITH_CANARY, "4", 100) == AliasState("4")
    with pytest.raises(RolloutError, match="changed under this rollout"):
        step_target("iris", WITH_CANARY, "9", 50)
    assert rollback_target("iris", WITH_CANARY, previous_stable=None) == AliasState("3")
    assert rollback_target("iris", STABLE, previous_stable="2") == AliasState("2")
    with pytest.raises(RolloutError, match="no earlier stable version"):
        rollback_target("iris", STABLE, previous_stable=None)


def test_the_previous_stable_version_comes_from_the_journal() -> None:
    def event(old: str, new: str, outcome: str = "ok") -> dict:
        return RolloutEvent("promote", "t", "now", AliasState(old), AliasState(new), outcome).as_record()

    newest_first = [event("2", "3"), event("1", "2")]
    assert previous_stable(newest_first, "3") == "2"
    assert previous_stable(newest_first, "2") == "1"
    assert previous_stable([event("2", "3", outcome="failed"), event("1", "2")], "3") is None
    assert previous_stable([], "1") is None


def test_progressive_targets_walk_the_steps_then_promote() -> None:
    states = progressive_targets("iris", STABLE, UNPUBLISHED, [10, 50, 100], 2)
    assert [s.describe() for s in states] == ["v3 + v(new)@10%", "v3 + v(new)@50%", "v(new)"]
    for bad in ([], [50, 10], [0, 100], [10, 101]):
        with pytest.raises(RolloutError, match="steps must be increasing"):
            check_steps(bad)


def test_prune_keeps_what_is_needed_and_the_newest() -> None:
    assert prunable([1, 2, 3, 4, 5, 6], needed={"2"}, keep=2) == ["1", "3", "4"]
    assert prunable([3, 1, 2], needed=set(), keep=0) == ["1", "2", "3"]


def test_provisioned_plan_gives_the_canary_its_share() -> None:
    assert provisioned_plan(0, AliasState("1", "2", 0.5)) == {}
    assert provisioned_plan(4, AliasState("1")) == {"1": 4}
    assert provisioned_plan(4, AliasState("1", "2", 0.1)) == {"1": 4, "2": 1}
    assert provisioned_plan(4, AliasState("1", "2", 0.6)) == {"1": 4, "2": 3}


@given(
    total=st.integers(0, 50),
    weight=st.floats(0.0001, 0.9999),
    current=st.dictionaries(st.sampled_from("123456"), st.integers(1, 50), max_size=3),
)
def test_the_peak_covers_both_sides_of_every_move(total: int, weight: float, current: dict[str, int]) -> None:
    plan = provisioned_plan(total, AliasState("1", "2", weight))
    peak = peak_provisioned(current, plan)
    assert peak >= sum(plan.values()) and peak >= sum(current.values())
    assert peak <= sum(plan.values()) + sum(current.values())
    if plan:
        assert 1 <= plan["2"] <= total


def test_a_move_raises_new_versions_before_it_releases_old_ones() -> None:
    move = plan_move(
        "iris",
        WITH_CANARY,
        AliasState("4"),
        wanted_provisioned=3,
        provisioned_now={"3": 3, "4": 1},
        reserved=6,
    )
    assert move.to_provision == {"4": 3} and move.to_release == ["3"] and move.peak == 6
    assert move.describe() == [
        "iris: alias live v3 + v4@20% -> v4",
        "  provisioned concurrency on v4: 1 -> 3",
        "  provisioned concurrency on v3: 3 -> 0 (after the move)",
        "  peak provisioned concurrency 6 (reserved 6)",
    ]


def test_a_move_over_the_reserved_concurrency_is_refused() -> None:
    over = r"needs 4 provisioned concurrency at once.*reserved concurrency 3"
    with pytest.raises(RolloutError, match=over):
        plan_move("iris", STABLE, AliasState("4"), wanted_provisioned=2, provisioned_now={"3": 2}, reserved=3)
    # without provisioned concurrency the reserved concurrency does not matter
    assert plan_move("iris", STABLE, AliasState("4"), wanted_provisioned=0, provisioned_now={}, reserved=0)


GATE = Gate(max_error_rate=0.05, max_p99_ms=500, min_requests=10)


@pytest.mark.parametrize(
    ("health", "elapsed", "decision", "reason"),
    [
        (Health(20, 2, 100), 1, "breach", "error rate 10.0% over 20 requests exceeds 5.0%"),
        (Health(5, 5, 100), 1, "watch", ""),  # too few requests to judge the error rate yet
        (Health(3, 0, 900), 1, "breach", "p99 duration 900 ms exceeds 500 ms"),
        (Health(20, 1, 100), 59, "watch", ""),  # healthy, but the step is not over
        (Health(20, 1, 100), 60, "pass", ""),
        (Health(9, 0, None), 60, "watch", ""),  # over, but not enough traffic: the grace period
        (Health(9, 0, None), 180, "breach", "not enough traffic to judge: 9 < 10 requests"),
    ],
)
def test_the_gate(health: Health, elapsed: float, decision: str, reason: str) -> None:
    verdict = judge(health, GATE, elapsed_s=elapsed, interval_s=60)
    assert (verdict.decision, verdict.reason) == (decision, reason)


def test_a_journaled_event_keeps_the_journal_format() -> None:
    event = RolloutEvent("rollout", "ana", "2026-01-01T00:00:00Z", STABLE, WITH_CANARY, percent=20)
    assert event.as_record() == {
        "action": "rollout",
        "by": "ana",
        "at": "2026-01-01T00:00:00Z",
        "outcome": "ok",
        "from": {"stable": "3", "canary": None, "canary_weight": 0.0},
        "to": {"stable": "3", "canary": "4", "canary_weight": 0.2},
        "percent": 20,
    }
