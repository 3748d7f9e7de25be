"""The rollout planner: where the live alias goes next, the provisioned concurrency the move needs, and
the gate's verdict on a canary. Pure: no AWS call, so every decision is unit-tested without one, and
``modelctl … --dry-run`` prints the same plan the real run carries out."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from model_registry.core.errors import RolloutError

# Stands for the Lambda version a rollout would publish, in a plan made before publishing (--dry-run).
UNPUBLISHED = "(new)"


@dataclass(frozen=True)
class AliasState:
    """Where the live alias points; ``revision_id`` is the alias revision it was read at."""

    stable_version: str
    canary_version: str | None = None
    canary_weight: float = 0.0
    revision_id: str = ""

    @property
    def versions(self) -> set[str]:
        """The Lambda versions that take traffic."""
        return {self.stable_version, *([self.canary_version] if self.canary_version else [])}

    def as_record(self) -> dict[str, Any]:
        """The form the journal stores (``from`` and ``to`` of an event)."""
        return {
            "stable": self.stable_version,
            "canary": self.canary_version,
            "canary_weight": self.canary_weight,
        }

    def describe(self) -> str:
        """``v3``, or ``v3 + v4@20%`` with a canary."""
        text = f"v{self.stable_version}"
        if self.canary_version:
            text += f" + v{self.canary_version}@{self.canary_weight:.0%}"
        return text


# --------------------------------------------------------------------------- the next alias state


def check_percent(percent: float) -> None:
    """A canary share must be in (0, 100]."""
    if not 0 < percent <= 100:
        raise RolloutError(f"canary percentage must be in (0, 100], got {percent}")


def check_steps(steps: Sequence[float]) -> None:
    """Progressive steps: increasing percentages in (0, 100]."""
    if not steps or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(steps):
        raise RolloutError("steps must be increasing percentages in (0, 100], e.g. 10,50,100")


def canary_target(
    model_name: str, before: AliasState, lambda_version: str, percent: float, model_version: int
) -> AliasState:
    """The alias with ``lambda_version`` taking ``percent`` % next to the stable version (all of it at
    100 %). Refused when a canary is already live, or when the version is the stable one: Lambda publishes
    nothing new when neither code nor configuration changed."""
    check_percent(percent)
    if before.canary_version:
        raise RolloutError(
            f"{model_name!r} already has a canary (Lambda version {before.canary_version}); "
            "promote or roll it back first"
        )
    if lambda_version == before.stable_version:
        raise RolloutError(
            f"model version {model_version} of {model_name!r} is already live on Lambda version "
            f"{lambda_version}, with the same code and configuration: nothing to roll out"
        )
    if percent >= 100:
        return AliasState(lambda_version)
    return AliasState(before.stable_version, lambda_version, percent / 100)


def step_target(model_name: str, before: AliasState, canary: str, percent: float) -> AliasState:
    """The next step of a progressive rollout; refused when the canary is no longer the one it started."""
    if before.canary_version != canary:
        raise RolloutError(f"the canary of {model_name!r} changed under this rollout; stopping")
    if percent >= 100:
        return AliasState(canary)
    return AliasState(before.stable_version, canary, percent / 100)


def promote_target(model_name: str, before: AliasState) -> AliasState:
    """All traffic on the canary."""
    if not before.canary_version:
        raise RolloutError(f"{model_name!r} has no canary to promote")
    return AliasState(before.canary_version)


def rollback_target(model_name: str, before: AliasState, previous_stable: str | None) -> AliasState:
    """Without the canary; with none, back on the previous stable version."""
    if before.canary_version:
        return AliasState(before.stable_version)
    if previous_stable is None:
        raise RolloutError(f"{model_name!r} has no canary and no earlier stable version to return to")
    return AliasState(previous_stable)


def previous_stable(events: Iterable[Mapping[str, Any]], current: str) -> str | None:
    """The stable version before ``current`` became stable, from journal events newest first."""
    for event in events:
        if event.get("outcome") != "ok" or not event.get("to"):
            continue
        if event["to"]["stable"] == current and event["from"]["stable"] != current:
            return str(event["from"]["stable"])
    return None


def prunable(published: Iterable[int], needed: set[str], keep: int) -> list[str]:
    """Published versions nothing needs: not in ``needed`` and not among the ``keep`` newest; oldest first."""
    ordered = sorted(published)
    newest = {str(v) for v in ordered[-keep:]} if keep > 0 else set()
    return [str(v) for v in ordered if str(v) not in needed | newest]


# --------------------------------------------------------------------------- provisioned concurrency


def provisioned_plan(total: int, state: AliasState) -> dict[str, int]:
    """Provisioned concurrency per Lambda version for an alias state: the stable version keeps all of
    ``total``, a canary its weighted share, at least 1. Empty when ``total`` is 0."""
    if total <= 0:
        return {}
    plan = {state.stable_version: total}
    if state.canary_version:
        plan[state.canary_version] = max(1, math.ceil(total * state.canary_weight))
    return plan


def peak_provisioned(current: Mapping[str, int], plan: Mapping[str, int]) -> int:
    """Provisioned concurrency held at the peak of a move that raises the new versions' before it lowers
    the old ones' (so traffic never meets a cold version): every version at the higher of the two."""
    return sum(max(current.get(v, 0), plan.get(v, 0)) for v in current.keys() | plan.keys())


@dataclass(frozen=True)
class Move:
    """One move of the live alias and the provisioned concurrency around it, in the order it is done:
    the target versions Active, ``to_provision`` put and READY, the alias pointed, ``to_release`` removed."""

    model_name: str
    before: AliasState
    after: AliasState
    provisioned_now: Mapping[str, int] = field(default_factory=dict)
    provisioned_after: Mapping[str, int] = field(default_factory=dict)
    reserved: int | None = None

    @property
    def to_provision(self) -> dict[str, int]:
        """Versions whose provisioned concurrency is set (raised, lowered or new) before traffic moves."""
        return {v: n for v, n in self.provisioned_after.items() if self.provisioned_now.get(v) != n}

    @property
    def to_release(self) -> list[str]:
        """Versions whose provisioned concurrency is removed once they carry no traffic."""
        return sorted(self.provisioned_now.keys() - self.provisioned_after.keys())

    @property
    def peak(self) -> int:
        """Provisioned concurrency held at once, mid-move."""
        return peak_provisioned(self.provisioned_now, self.provisioned_after)

    def check(self) -> None:
        """Provisioned concurrency on all versions counts inside the function's reserved concurrency
        (https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html): a move that would
        hold more at its peak is refused before anything changes."""
        if self.provisioned_after and self.reserved is not None and self.peak > self.reserved:
            raise RolloutError(
                f"moving {self.model_name!r} needs {self.peak} provisioned concurrency at once (the new "
                f"versions' {sum(self.provisioned_after.values())} before the old versions' "
                f"{sum(self.provisioned_now.values())} is removed), over its reserved concurrency "
                f"{self.reserved}: raise reserved_concurrency to at least twice provisioned_concurrency in "
                "terraform. Nothing was changed"
            )

    def describe(self) -> list[str]:
        """The plan in words, one line per change (what ``--dry-run`` prints)."""
        lines = [f"{self.model_name}: alias live {self.before.describe()} -> {self.after.describe()}"]
        for version, count in sorted(self.to_provision.items()):
            lines.append(
                f"  provisioned concurrency on v{version}: {self.provisioned_now.get(version, 0)} -> {count}"
            )
        for version in self.to_release:
            lines.append(
                f"  provisioned concurrency on v{version}: {self.provisioned_now[version]} -> 0 "
                "(after the move)"
            )
        if self.provisioned_after:
            limit = "no reserved concurrency" if self.reserved is None else f"reserved {self.reserved}"
            lines.append(f"  peak provisioned concurrency {self.peak} ({limit})")
        return lines


def plan_move(
    model_name: str,
    before: AliasState,
    after: AliasState,
    *,
    wanted_provisioned: int,
    provisioned_now: Mapping[str, int],
    reserved: int | None,
) -> Move:
    """The move from ``before`` to ``after``, checked against the reserved concurrency."""
    move = Move(
        model_name,
        before,
        after,
        dict(provisioned_now),
        provisioned_plan(wanted_provisioned, after),
        reserved,
    )
    move.check()
    return move


# --------------------------------------------------------------------------- the gate


@dataclass(frozen=True)
class Health:
    """Traffic seen by one Lambda version over a window."""

    requests: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def describe(self) -> str:
        p99 = f", p99 {self.p99_ms:.0f} ms" if self.p99_ms is not None else ""
        return f"{self.requests} requests, {self.errors} errors ({self.error_rate:.1%}){p99}"


@dataclass(frozen=True)
class Gate:
    """Limits a canary must stay within at every step of a progressive rollout."""

    max_error_rate: float = 0.01
    max_p99_ms: float | None = None
    min_requests: int = 10

    def describe(self) -> str:
        p99 = f", p99 <= {self.max_p99_ms:g} ms" if self.max_p99_ms is not None else ""
        return f"error rate <= {self.max_error_rate:.1%}{p99}, judged after {self.min_requests} requests"


@dataclass(frozen=True)
class Verdict:
    """The gate's answer on one look at a canary: keep watching, pass the step, or roll back."""

    decision: Literal["watch", "pass", "breach"]
    reason: str = ""


# A step without enough traffic to judge is watched this many intervals more, then rolled back.
EVIDENCE_GRACE_INTERVALS = 2


def judge(health: Health, gate: Gate, *, elapsed_s: float, interval_s: float) -> Verdict:
    """The verdict on a canary ``elapsed_s`` into a step of ``interval_s``: a breach as soon as one is
    seen; a pass once the interval is over with enough requests; a breach for lack of evidence after
    the grace intervals (a canary nobody calls is not promoted blind)."""
    if health.requests >= gate.min_requests and health.error_rate > gate.max_error_rate:
        return Verdict(
            "breach",
            f"error rate {health.error_rate:.1%} over {health.requests} requests exceeds "
            f"{gate.max_error_rate:.1%}",
        )
    if gate.max_p99_ms is not None and health.p99_ms is not None and health.p99_ms > gate.max_p99_ms:
        return Verdict("breach", f"p99 duration {health.p99_ms:.0f} ms exceeds {gate.max_p99_ms:.0f} ms")
    if elapsed_s >= interval_s and health.requests >= gate.min_requests:
        return Verdict("pass")
    if elapsed_s >= interval_s * (1 + EVIDENCE_GRACE_INTERVALS):
        return Verdict(
            "breach", f"not enough traffic to judge: {health.requests} < {gate.min_requests} requests"
        )
    return Verdict("watch")


def progressive_targets(
    model_name: str, before: AliasState, canary: str, steps: Sequence[float], model_version: int
) -> list[AliasState]:
    """Every alias state a progressive rollout passes through when each step passes its gate."""
    check_steps(steps)
    states = [canary_target(model_name, before, canary, steps[0], model_version)]
    for percent in steps[1:]:
        states.append(step_target(model_name, states[-1], canary, percent))
    if states[-1].canary_version:
        states.append(promote_target(model_name, states[-1]))
    return states


# --------------------------------------------------------------------------- what the operations return

Action = Literal["deploy", "rollout", "step", "promote", "rollback", "auto-rollback"]


@dataclass(frozen=True)
class RolloutEvent:
    """One change of a model's live alias, as journaled in the registry and returned to the caller."""

    action: Action
    by: str
    at: str
    before: AliasState
    after: AliasState
    outcome: str = "ok"
    model_version: int | None = None
    lambda_version: str | None = None
    percent: float | None = None
    reason: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The journal's form (``from``/``to`` objects; optional fields only when set)."""
        record: dict[str, Any] = {
            "action": self.action,
            "by": self.by,
            "at": self.at,
            "outcome": self.outcome,
            "from": self.before.as_record(),
            "to": self.after.as_record(),
        }
        extras = {
            "model_version": self.model_version,
            "lambda_version": self.lambda_version,
            "percent": self.percent,
            "reason": self.reason,
        }
        return record | {key: value for key, value in extras.items() if value is not None}


@dataclass(frozen=True)
class ProgressiveResult:
    """How a progressive rollout ended (an interrupted one raises ``KeyboardInterrupt`` instead)."""

    outcome: Literal["promoted", "rolled-back"]
    lambda_version: str
    reason: str = ""
