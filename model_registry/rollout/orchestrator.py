"""Rollouts: move a model's ``live`` alias between Lambda versions that pin model versions.

Each operation reads the alias, asks the planner (:mod:`~model_registry.rollout.plan`) for the next
state, and has :class:`~model_registry.rollout.traffic.LambdaTraffic` carry it out: the target versions
Active, provisioned concurrency READY, then the alias pointed (with the revision it was read at). A
per-model lock in the registry (a conditional write, renewed while a step waits) and the revision ids
keep two rollouts of one model, or a rollout and a ``terraform apply``, from both winning; every change
is journaled in the registry as a :class:`~model_registry.rollout.plan.RolloutEvent`.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from model_registry.core import contract
from model_registry.core.errors import ConflictError, RegistryError, RolloutError
from model_registry.core.records import utc_now
from model_registry.registry.service import RegistryService
from model_registry.registry.store import RolloutJournal
from model_registry.rollout import plan
from model_registry.rollout.health import HealthReader
from model_registry.rollout.plan import (
    UNPUBLISHED,
    Action,
    AliasState,
    Gate,
    Health,
    Move,
    ProgressiveResult,
    RolloutEvent,
)
from model_registry.rollout.pooled import PolicyTraffic
from model_registry.rollout.traffic import LambdaTraffic, Say, error_code

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
else:
    CloudWatchClient = LambdaClient = Any

LOCK_TTL_S = 300  # renewed every LOCK_TTL_S / 5 while a step runs, so it outlives every wait
KEEP_VERSIONS = 3  # published versions kept beyond the alias's and the rollback target


@dataclass(frozen=True)
class VersionStatus:
    """One Lambda version behind a model's live alias."""

    model: str
    role: str  # "stable" or "canary"
    lambda_version: str
    model_version: str
    weight: float
    requests: int | None = None
    errors: int | None = None


@dataclass(frozen=True)
class ModelStatus:
    """Where a model's traffic goes and what it saw recently."""

    model: str
    state: AliasState
    versions: list[VersionStatus]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form ``modelctl status --json`` prints."""
        return {
            "model": self.model,
            "versions": [{k: v for k, v in asdict(row).items() if v is not None} for row in self.versions],
            "state": asdict(self.state),
        }


class Rollouts:
    """Traffic control for the models of one platform."""

    def __init__(
        self,
        service: RegistryService,
        lambda_client: LambdaClient,
        platform_name: str,
        cloudwatch_client: CloudWatchClient | None = None,
        actor: str | None = None,
        *,
        lock_ttl_s: int = LOCK_TTL_S,
        poll_s: float = 1.0,
        say: Say | None = None,
    ) -> None:
        self.service = service
        self.say: Say = say or (lambda message: None)
        # Through self.say, so a caller that replaces it later hears the traffic client too.
        self.traffic = LambdaTraffic(lambda_client, platform_name, poll_s=poll_s, say=lambda m: self.say(m))
        self.pool_traffic = PolicyTraffic(service.store, platform_name)
        self._tiers: dict[str, LambdaTraffic | PolicyTraffic] = {}
        self.health_reader = HealthReader(cloudwatch_client) if cloudwatch_client is not None else None
        self.platform_name = platform_name
        self.journal = RolloutJournal(service.store)
        self.actor = actor or os.environ.get("MODELCTL_USER") or getpass.getuser()
        self.lock_ttl_s = lock_ttl_s

    # ------------------------------------------------------------------ reading state

    def traffic_for(self, model_name: str) -> LambdaTraffic | PolicyTraffic:
        """The model's tier: its dedicated function when it has one, else the pool's registry policy (when
        the platform has a pool and the model is registered)."""
        tier = self._tiers.get(model_name)
        if tier is not None:
            return tier
        try:
            self.traffic.alias_state(model_name)
            tier = self.traffic
        except RolloutError:
            if not self._pool_exists():
                raise
            self.service.store.summary(model_name)  # ModelNotFound: not registered either
            tier = self.pool_traffic
        self._tiers[model_name] = tier
        return tier

    def _pool_exists(self) -> bool:
        pool = contract.pool_function_name(self.platform_name)
        try:
            self.traffic.client.get_alias(FunctionName=pool, Name=contract.ALIAS_NAME)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return False
            raise
        return True

    def function_name(self, model_name: str) -> str:
        return self.traffic_for(model_name).function_name(model_name)

    def alias_state(self, model_name: str) -> AliasState:
        """Where the model's live alias points."""
        return self.traffic_for(model_name).alias_state(model_name)

    def health(self, model_name: str, lambda_version: str, since: datetime) -> Health:
        """What the gate sees of one Lambda version of the model since ``since``."""
        if self.health_reader is None:
            raise RolloutError("no CloudWatch client: cannot read health metrics")
        if isinstance(self.traffic_for(model_name), PolicyTraffic):
            return self.health_reader.read_pooled(model_name, lambda_version, since)
        return self.health_reader.read(
            self.function_name(model_name),
            model_name,
            self.traffic_for(model_name).pinned_model_version(model_name, lambda_version),
            lambda_version,
            since,
        )

    def plan_move(self, model_name: str, before: AliasState, after: AliasState) -> Move:
        """The move to ``after`` with the function's provisioned and reserved concurrency, checked."""
        traffic = self.traffic_for(model_name)
        return plan.plan_move(
            model_name,
            before,
            after,
            wanted_provisioned=traffic.wanted_provisioned(model_name),
            provisioned_now=traffic.provisioned(model_name),
            reserved=traffic.reserved_concurrency(model_name),
        )

    # ------------------------------------------------------------------ plans without changes (--dry-run)

    def plan_rollout(self, model_name: str, model_version: int, steps: Sequence[float]) -> list[Move]:
        """The moves a rollout of ``model_version`` through ``steps`` would make, changing nothing: the
        artifact is verified and the state read, but no version is published (it shows as ``(new)``)."""
        self._verified(model_name, model_version)
        before = self.alias_state(model_name)
        moves = []
        for after in plan.progressive_targets(model_name, before, UNPUBLISHED, steps, model_version):
            moves.append(self.plan_move(model_name, before, after))
            before = after
        return moves

    def plan_promote(self, model_name: str) -> Move:
        before = self.alias_state(model_name)
        return self.plan_move(model_name, before, plan.promote_target(model_name, before))

    def plan_rollback(self, model_name: str) -> Move:
        before = self.alias_state(model_name)
        previous = None if before.canary_version else self._previous_stable(model_name, before.stable_version)
        return self.plan_move(model_name, before, plan.rollback_target(model_name, before, previous))

    # ------------------------------------------------------------------ the operations

    def publish(self, model_name: str, model_version: int) -> str:
        """Verify the model version, pin it on the function and publish a Lambda version; return it."""
        self._verified(model_name, model_version)  # a tampered or missing artifact moves no traffic
        return self.traffic_for(model_name).publish(model_name, model_version)

    def deploy(self, model_name: str, model_version: int) -> str:
        """All traffic to ``model_version`` at once (platform bring-up); returns the Lambda version."""

        def run() -> RolloutEvent:
            before = self.alias_state(model_name)
            lambda_version = self.publish(model_name, model_version)
            after = AliasState(lambda_version)
            self._move(self.plan_move(model_name, before, after))
            return self._record(
                model_name,
                "deploy",
                before,
                after,
                model_version=model_version,
                lambda_version=lambda_version,
            )

        event = self._locked(model_name, run)
        self._prune_quietly(model_name)
        return str(event.lambda_version)

    def start_canary(self, model_name: str, model_version: int, percent: float) -> RolloutEvent:
        """Publish ``model_version`` and send it ``percent`` % of traffic next to the stable version.

        The same model version as the stable one is a canary too when the function's code or
        configuration changed since (a new handler, layer, memory or timeout from ``terraform apply``):
        that is how such a change reaches traffic gradually."""
        plan.check_percent(percent)

        def run() -> RolloutEvent:
            before = self.alias_state(model_name)
            if before.canary_version:  # refused before a version is published
                plan.canary_target(model_name, before, UNPUBLISHED, percent, model_version)
            lambda_version = self.publish(model_name, model_version)
            after = plan.canary_target(model_name, before, lambda_version, percent, model_version)
            self._move(self.plan_move(model_name, before, after))
            return self._record(
                model_name,
                "rollout",
                before,
                after,
                model_version=model_version,
                lambda_version=lambda_version,
                percent=percent,
            )

        event = self._locked(model_name, run)
        if event.after.canary_version is None:
            self._prune_quietly(model_name)
        return event

    def promote(self, model_name: str) -> RolloutEvent:
        """Move all traffic to the canary."""

        def run() -> RolloutEvent:
            move = self.plan_promote(model_name)
            self._move(move)
            return self._record(model_name, "promote", move.before, move.after)

        event = self._locked(model_name, run)
        self._prune_quietly(model_name)
        return event

    def rollback(
        self, model_name: str, reason: str = "requested", *, action: Action = "rollback"
    ) -> RolloutEvent:
        """Drop the canary, or (with no canary) return to the previous stable version."""

        def run() -> RolloutEvent:
            move = self.plan_rollback(model_name)
            self._move(move)
            return self._record(model_name, action, move.before, move.after, reason=reason)

        return self._locked(model_name, run)

    def progressive(
        self,
        model_name: str,
        model_version: int,
        steps: Sequence[float],
        interval_s: float,
        gate: Gate,
        say: Say = print,
        poll_s: float = 2.0,
    ) -> ProgressiveResult:
        """Walk the canary through ``steps`` (percent), watching its health; roll back by itself on a breach.

        Ctrl-C rolls the canary back and re-raises, leaving only the stable version live.
        """
        plan.check_steps(steps)
        first = self.start_canary(model_name, model_version, steps[0])
        canary = str(first.lambda_version)
        say(
            f"step 1/{len(steps)}: {steps[0]:g}% of {model_name} on Lambda version {canary} "
            f"(model v{model_version})"
        )
        try:
            for index, percent in enumerate(steps):
                if percent >= 100:
                    break  # the last step: the promotion below
                if index:
                    self.set_canary_weight(model_name, canary, percent)
                    say(f"step {index + 1}/{len(steps)}: {percent:g}%")
                verdict = self._watch(model_name, canary, interval_s, gate, say, poll_s)
                if verdict.decision == "breach":
                    self.rollback(model_name, reason=verdict.reason, action="auto-rollback")
                    say(f"rolled back: {verdict.reason}")
                    return ProgressiveResult("rolled-back", canary, verdict.reason)
            self.promote(model_name)
        except KeyboardInterrupt:
            if self.alias_state(model_name).canary_version:
                self.rollback(model_name, reason="interrupted", action="auto-rollback")
            state = self.alias_state(model_name)
            pinned = self.traffic_for(model_name).pinned_model_version(model_name, state.stable_version)
            say(
                f"interrupted: all traffic on stable Lambda version {state.stable_version} "
                f"(model v{pinned}); canary dropped"
            )
            raise
        say(f"promoted: all traffic on Lambda version {canary} (model v{model_version})")
        return ProgressiveResult("promoted", canary)

    def status(self, model_name: str, window_s: int = 900) -> ModelStatus:
        """Stable and canary Lambda versions, the model versions they pin, weights, recent traffic."""
        state = self.alias_state(model_name)
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        rows = []
        for role, version, weight in (
            ("stable", state.stable_version, 1 - state.canary_weight),
            ("canary", state.canary_version, state.canary_weight),
        ):
            if version is None:
                continue
            health = self.health(model_name, version, since) if self.health_reader else None
            rows.append(
                VersionStatus(
                    model_name,
                    role,
                    version,
                    self.traffic_for(model_name).pinned_model_version(model_name, version),
                    round(weight, 4),
                    health.requests if health else None,
                    health.errors if health else None,
                )
            )
        return ModelStatus(model_name, state, rows)

    def prune(self, model_name: str, keep: int = KEEP_VERSIONS, dry_run: bool = False) -> list[str]:
        """Delete the published versions nothing needs any more; returns them (oldest first).

        Kept: the versions the alias routes to, the version a rollback would return to, versions with
        provisioned concurrency, and the ``keep`` newest. Every published version costs code storage
        (75 GB per region), SnapStart bills snapshot caching per version, and Terraform's refresh pages
        through all of them (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
        https://aws.amazon.com/lambda/pricing/)."""
        state = self.alias_state(model_name)
        needed = state.versions | set(self.traffic_for(model_name).provisioned(model_name))
        previous = self._previous_stable(model_name, state.stable_version)
        if previous:
            needed.add(previous)
        doomed = plan.prunable(self.traffic_for(model_name).published_versions(model_name), needed, keep)
        if not dry_run:
            for version in doomed:
                self.traffic_for(model_name).delete_version(model_name, version)
        return doomed

    # ------------------------------------------------------------------ the steps inside

    def _verified(self, model_name: str, model_version: int) -> None:
        self.service.fetch_verified(self.service.store.get_version(model_name, model_version))

    def _move(self, move: Move) -> None:
        """Carry out a planned move: target versions Active and provisioned first, the alias pointed, then
        the provisioned concurrency of the versions it left removed (they carry no traffic any more)."""
        traffic = self.traffic_for(move.model_name)
        for version in sorted(move.after.versions):
            traffic.ensure_active(traffic.function_name(move.model_name), version)
        traffic.provision(move.model_name, move.provisioned_after, move.provisioned_now)
        traffic.set_alias(move.model_name, move.after, move.before.revision_id)
        traffic.release(move.model_name, move.to_release)
        if isinstance(traffic, LambdaTraffic):
            self._follow_in_registry(traffic, move.model_name, move.after)

    def _follow_in_registry(self, traffic: LambdaTraffic, model_name: str, state: AliasState) -> None:
        """Record a dedicated model's live versions as its registry traffic policy: the pool serves a
        drained model, and a new function serves its model before the first rollout, by that policy."""
        stable = traffic.pinned_model_version(model_name, state.stable_version)
        canary = (
            traffic.pinned_model_version(model_name, state.canary_version) if state.canary_version else ""
        )
        if not stable.isdigit() or not (canary == "" or canary.isdigit()):
            return  # a version that serves the policy's own choice ("latest"): nothing to record
        try:
            changed = self.pool_traffic.follow(
                model_name, int(stable), int(canary) if canary else None, state.canary_weight
            )
        except RegistryError as exc:  # the alias moved; the policy catches up on the next move
            self.say(f"  the registry's traffic policy of {model_name} was not updated: {exc}")
            return
        if changed:
            self.say(
                f"  registry traffic policy of {model_name}: stable v{stable}"
                + (f", canary v{canary} at {state.canary_weight:.0%}" if canary else "")
            )

    def set_canary_weight(self, model_name: str, canary: str, percent: float) -> RolloutEvent:
        """Send ``percent`` % to ``canary``, refused unless it is still the live canary (one step of a
        progressive rollout)."""

        def run() -> RolloutEvent:
            before = self.alias_state(model_name)
            after = plan.step_target(model_name, before, canary, percent)
            self._move(self.plan_move(model_name, before, after))
            return self._record(model_name, "step", before, after, percent=percent)

        return self._locked(model_name, run)

    def _watch(
        self, model_name: str, canary: str, interval_s: float, gate: Gate, say: Say, poll_s: float
    ) -> plan.Verdict:
        """Watch one step until the gate passes it or sees a breach."""
        since = datetime.now(UTC) - timedelta(seconds=1)
        started = time.monotonic()
        while True:
            time.sleep(poll_s)
            health = self.health(model_name, canary, since)
            say(f"  canary: {health.describe()}")
            verdict = plan.judge(health, gate, elapsed_s=time.monotonic() - started, interval_s=interval_s)
            if verdict.decision != "watch":
                return verdict

    def _previous_stable(self, model_name: str, current: str) -> str | None:
        return plan.previous_stable(self.journal.events(model_name, limit=200), current)

    def _prune_quietly(self, model_name: str) -> None:
        """Prune after a successful step; a failure there (no lambda:DeleteFunction, say) is reported, and
        the step it follows stands."""
        try:
            deleted = self.prune(model_name)
        except (ClientError, RolloutError, ConflictError) as exc:
            self.say(f"  old versions of {model_name} were not pruned: {exc}")
            return
        if deleted:
            self.say(f"  pruned Lambda versions {', '.join(deleted)} of {model_name}")

    # ------------------------------------------------------------------ the lock and the journal

    @contextmanager
    def lock(self, model_name: str) -> Iterator[str]:
        """Hold the model's rollout lock, renewed in the background; yields the owner id."""
        owner = f"{self.actor}:{uuid.uuid4().hex[:8]}"
        self.journal.acquire(model_name, owner, ttl_s=self.lock_ttl_s)
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(self.lock_ttl_s / 5):
                if not self.journal.renew(model_name, owner, ttl_s=self.lock_ttl_s):
                    self.say(f"  the rollout lock of {model_name} was lost")
                    return

        renewer = threading.Thread(target=heartbeat, daemon=True, name=f"lock-{model_name}")
        renewer.start()
        try:
            yield owner
        finally:
            stop.set()
            renewer.join(timeout=10)
            self.journal.release(model_name, owner)

    def _locked(self, model_name: str, action: Callable[[], RolloutEvent]) -> RolloutEvent:
        with self.lock(model_name):
            return action()

    def _record(
        self, model_name: str, action: Action, before: AliasState, after: AliasState, **details: Any
    ) -> RolloutEvent:
        event = RolloutEvent(action, self.actor, utc_now(), before, after, **details)
        self.journal.record(model_name, event.as_record())
        return event
