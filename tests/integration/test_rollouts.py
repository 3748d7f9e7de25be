"""Rollouts against the emulator's Lambda control plane (no data plane needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from examples.models import ExampleModel
from local_platform.aws_rules.control import set_version_state
from model_registry.core import contract
from model_registry.core.errors import (
    ConflictError,
    IntegrityError,
    ModelNotFound,
    RolloutError,
    VersionNotFound,
)
from model_registry.core.settings import Settings
from model_registry.rollout import AliasState, Gate, RolloutEvent, Rollouts

pytestmark = pytest.mark.integration


def test_canary_promote_rollback_and_history(rollouts: Rollouts) -> None:
    first = rollouts.deploy("iris", 1)
    event = rollouts.start_canary("iris", 2, 20)
    state = rollouts.alias_state("iris")
    assert (state.stable_version, state.canary_version, state.canary_weight) == (
        first,
        event.after.canary_version,
        0.2,
    )
    assert rollouts.traffic.pinned_model_version("iris", state.canary_version) == "2"
    assert rollouts.traffic.pinned_model_version("iris", state.stable_version) == "1"
    with pytest.raises(RolloutError, match="already has a canary"):
        rollouts.start_canary("iris", 3, 10)

    rollouts.promote("iris")
    promoted = rollouts.alias_state("iris")
    assert (promoted.stable_version, promoted.canary_version) == (state.canary_version, None)

    rollouts.rollback("iris", reason="bad metrics")  # no canary: back to the previous stable version
    assert rollouts.alias_state("iris").stable_version == first

    rollouts.start_canary("iris", 3, 50)
    rollouts.rollback("iris")  # canary: dropped
    after = rollouts.alias_state("iris")
    assert (after.stable_version, after.canary_version) == (first, None)

    history = rollouts.journal.events("iris")
    assert [e["action"] for e in history] == [
        "rollback",
        "rollout",
        "rollback",
        "promote",
        "rollout",
        "deploy",
    ]
    assert history[2]["reason"] == "bad metrics" and all(e["by"] == "tester" for e in history)
    status = rollouts.status("iris")
    assert [(r.role, r.model_version) for r in status.versions] == [("stable", "1")]


def test_unknown_version_and_tampered_artifact_are_refused_without_change(rollouts: Rollouts) -> None:
    rollouts.deploy("iris", 1)
    lam = rollouts.traffic.client
    name = rollouts.function_name("iris")
    versions_before = len(lam.list_versions_by_function(FunctionName=name)["Versions"])
    state_before = rollouts.alias_state("iris")
    with pytest.raises(VersionNotFound):
        rollouts.start_canary("iris", 42, 10)
    record = rollouts.service.store.get_version("iris", 2)
    s3 = rollouts.service.artifacts._s3
    s3.put_object(Bucket=rollouts.service.artifacts.bucket, Key=record.s3_key, Body=b"tampered")
    with pytest.raises(IntegrityError):
        rollouts.start_canary("iris", 2, 10)
    assert rollouts.alias_state("iris") == state_before
    assert len(lam.list_versions_by_function(FunctionName=name)["Versions"]) == versions_before


def test_two_concurrent_rollouts_cannot_both_win(rollouts: Rollouts) -> None:
    rollouts.deploy("iris", 1)
    barrier = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def attempt(model_version: int) -> None:
        barrier.wait()
        try:
            outcomes[model_version] = rollouts.start_canary("iris", model_version, 10)
        except (ConflictError, RolloutError) as exc:
            outcomes[model_version] = exc

    threads = [threading.Thread(target=attempt, args=(v,)) for v in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [v for v, o in outcomes.items() if isinstance(o, RolloutEvent)]
    losers = [o for o in outcomes.values() if not isinstance(o, RolloutEvent)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert "nothing was changed" in str(losers[0]) or "already has a canary" in str(losers[0])
    state = rollouts.alias_state("iris")
    assert rollouts.traffic.pinned_model_version("iris", state.canary_version) == str(winners[0])


def test_cli_rollout_status_history(rollouts: Rollouts, server_settings: Settings) -> None:
    rollouts.deploy("iris", 1)
    env = {
        **os.environ,
        contract.ENV_TABLE: server_settings.table_name,
        contract.ENV_BUCKET: server_settings.bucket_name,
        contract.ENV_ENDPOINT_URL: server_settings.endpoint_url or "",
        contract.ENV_PLATFORM_NAME: rollouts.platform_name,
        "MODELCTL_USER": "cli-user",
    }

    def modelctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "model_registry.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    lam, name = rollouts.traffic.client, rollouts.function_name("iris")
    before = (rollouts.alias_state("iris"), lam.list_versions_by_function(FunctionName=name)["Versions"])
    planned = modelctl("rollout", "iris", "2", "--steps", "10,50,100", "--interval", "1m", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    stable = before[0].stable_version
    assert planned.stdout.splitlines() == [
        "iris: 3 steps of 60s; gate: error rate <= 1.0%, judged after 10 requests",
        f"iris: alias live v{stable} -> v{stable} + v(new)@10%",
        f"iris: alias live v{stable} + v(new)@10% -> v{stable} + v(new)@50%",
        f"iris: alias live v{stable} + v(new)@50% -> v(new)",
        "dry run: nothing was changed",
    ]
    as_json = json.loads(modelctl("rollback", "iris", "--dry-run", "--json").stdout)
    assert as_json[0]["from"]["stable"] == stable and as_json[0]["to"]["stable"] == "1"  # Terraform's
    after = (rollouts.alias_state("iris"), lam.list_versions_by_function(FunctionName=name)["Versions"])
    assert after == before and rollouts.journal.events("iris")[0]["action"] == "deploy"

    started = modelctl("rollout", "iris", "2", "--canary", "25")
    assert started.returncode == 0, started.stderr
    assert "25%" in started.stdout
    status = modelctl("status", "iris")
    assert "canary" in status.stdout and "0.25" in status.stdout
    assert modelctl("promote", "iris").returncode == 0
    refused = modelctl("rollout", "iris", "99", "--canary", "10")
    assert refused.returncode == 1 and "no version 99" in refused.stderr
    history = modelctl("history", "iris")
    assert history.stdout.splitlines()[1].split()[3] == "promote" and "cli-user" in history.stdout


def test_provisioned_concurrency_moves_with_the_traffic(rollouts: Rollouts) -> None:
    name = rollouts.function_name("iris")
    lam = rollouts.traffic.client
    lam.tag_resource(  # what Terraform's provisioned_concurrency = 3 writes
        Resource=lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"],
        Tags={contract.TAG_PROVISIONED_CONCURRENCY: "3"},
    )
    first = rollouts.deploy("iris", 1)
    assert rollouts.traffic.provisioned("iris") == {first: 3}
    canary = rollouts.start_canary("iris", 2, 20).lambda_version
    assert rollouts.traffic.provisioned("iris") == {first: 3, canary: 1}  # ceil(3 x 0.2), at least 1
    rollouts.set_canary_weight("iris", canary, 50)
    assert rollouts.traffic.provisioned("iris") == {first: 3, canary: 2}
    rollouts.promote("iris")
    assert rollouts.traffic.provisioned("iris") == {canary: 3}  # the old stable version gave its up
    third = rollouts.start_canary("iris", 3, 10).lambda_version
    assert rollouts.traffic.provisioned("iris") == {canary: 3, third: 1}
    rollouts.rollback("iris", reason="test")
    assert rollouts.traffic.provisioned("iris") == {canary: 3}  # the dropped canary's is gone


def test_without_the_tag_no_provisioned_concurrency_is_configured(rollouts: Rollouts) -> None:
    rollouts.deploy("iris", 1)
    rollouts.start_canary("iris", 2, 20)
    assert rollouts.traffic.wanted_provisioned("iris") == 0 and rollouts.traffic.provisioned("iris") == {}


class Snapshotter:
    """Stands in for the data plane's SnapStart housekeeping: reports each Pending SnapStart version of
    a function Active (or Failed) once it has been Pending for ``delay_s``, as Lambda does once the
    snapshot is taken."""

    def __init__(self, rollouts: Rollouts, model: str, outcome: str = "Active", delay_s: float = 1.0) -> None:
        self.rollouts, self.model, self.outcome, self.delay_s = rollouts, model, outcome, delay_s
        self.reported: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        lam = self.rollouts.traffic.client
        name = self.rollouts.function_name(self.model)
        endpoint = lam.meta.endpoint_url
        seen: dict[str, float] = {}
        while not self._stop.wait(0.2):
            for config in lam.list_versions_by_function(FunctionName=name)["Versions"]:
                version = config["Version"]
                if config.get("State") != "Pending" or version == "$LATEST":
                    continue
                first = seen.setdefault(version, time.monotonic())
                if time.monotonic() - first >= self.delay_s:
                    reason = "init failed in the snapshot" if self.outcome == "Failed" else ""
                    set_version_state(
                        endpoint,
                        name,
                        version,
                        self.outcome,
                        reason,
                        "FunctionError.RuntimeInitError" if reason else "",
                    )
                    self.reported.append(version)
                    seen.pop(version)

    def __enter__(self) -> Snapshotter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _enable_snap_start(rollouts: Rollouts, model: str) -> None:
    lam, name = rollouts.traffic.client, rollouts.function_name(model)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, SnapStart={"ApplyOn": "PublishedVersions"})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)


def test_snap_start_versions_take_traffic_only_once_their_snapshot_is_active(rollouts: Rollouts) -> None:
    """A published SnapStart version is Pending until its snapshot is taken: the rollout waits for it, and
    a version whose snapshot failed never gets traffic."""
    name = rollouts.function_name("iris")
    lam = rollouts.traffic.client
    first = rollouts.deploy("iris", 1)
    _enable_snap_start(rollouts, "iris")
    with Snapshotter(rollouts, "iris", delay_s=1.5) as snapshotter:
        started = time.monotonic()
        version = rollouts.deploy("iris", 2)
        waited = time.monotonic() - started
    assert snapshotter.reported == [version] and waited >= 1.5  # moved only after the snapshot was taken
    config = lam.get_function_configuration(FunctionName=name, Qualifier=version)
    assert config["State"] == "Active"
    assert config["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    assert rollouts.alias_state("iris").stable_version == version != first

    failed = pytest.raises(RolloutError, match=r"is not Active \(Failed\): init failed in the snapshot")
    with Snapshotter(rollouts, "iris", outcome="Failed", delay_s=0.5), failed:
        rollouts.start_canary("iris", 3, 10)
    state = rollouts.alias_state("iris")
    assert (state.stable_version, state.canary_version) == (version, None)


def test_rollback_to_an_inactive_snap_start_version_reactivates_it_first(rollouts: Rollouts) -> None:
    """A SnapStart version idle for 14 days is Inactive; invoking it fails and makes Lambda re-create
    its snapshot. The usual rollback target is such a version: traffic moves only once it is Active."""
    name = rollouts.function_name("iris")
    _enable_snap_start(rollouts, "iris")
    with Snapshotter(rollouts, "iris", delay_s=0.5):
        old = rollouts.deploy("iris", 1)
        new = rollouts.deploy("iris", 2)
    endpoint = rollouts.traffic.client.meta.endpoint_url
    set_version_state(endpoint, name, old, "Inactive", "The function has been idle", "Idle")
    messages: list[str] = []
    rollouts.say = messages.append
    with Snapshotter(rollouts, "iris", delay_s=1.0) as snapshotter:
        rollouts.rollback("iris", reason="bad release")
    assert snapshotter.reported == [old]  # re-activated (Pending) by the rollout, then snapshotted
    assert any("Inactive: re-activating" in m for m in messages)
    assert rollouts.alias_state("iris").stable_version == old != new
    assert (
        rollouts.traffic.client.get_function_configuration(FunctionName=name, Qualifier=old)["State"]
        == "Active"
    )


# --------------------------------------------------------------------------- what stops traffic moving on AWS


def test_a_rollout_right_after_a_terraform_update_waits_for_it(rollouts: Rollouts) -> None:
    """An apply that just updated the function leaves it InProgress; a rollout then waits (Lambda would
    refuse the update with ResourceConflictException) instead of failing."""
    name = rollouts.function_name("iris")
    rollouts.deploy("iris", 1)
    lam = rollouts.traffic.client
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    lam.update_function_configuration(FunctionName=name, MemorySize=512)  # what an apply does
    assert lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "InProgress"
    version = rollouts.deploy("iris", 2)
    config = lam.get_function_configuration(FunctionName=name, Qualifier=version)
    assert config["MemorySize"] == 512 and rollouts.traffic.pinned_model_version("iris", version) == "2"


def test_a_change_between_the_update_and_the_publication_is_not_published(rollouts: Rollouts) -> None:
    """The rollout publishes with the RevisionId of its own update: a change that lands in between (a
    concurrent apply) makes Lambda refuse the publication, and nothing reaches traffic."""
    name = rollouts.function_name("iris")
    rollouts.deploy("iris", 1)
    before = rollouts.alias_state("iris")
    lam = rollouts.traffic.client
    other = boto3.client("lambda", region_name="us-east-1", endpoint_url=lam.meta.endpoint_url)

    def concurrent_apply(**_: object) -> None:
        other.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
        other.update_function_configuration(FunctionName=name, Description="changed by someone else")
        other.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})

    lam.meta.events.register("before-call.lambda.PublishVersion", concurrent_apply)
    try:
        with pytest.raises(RolloutError, match="changed during the rollout"):
            rollouts.start_canary("iris", 2, 10)
    finally:
        lam.meta.events.unregister("before-call.lambda.PublishVersion", concurrent_apply)
    assert rollouts.alias_state("iris") == before


def test_a_function_without_its_contract_environment_is_not_published(rollouts: Rollouts) -> None:
    name = rollouts.function_name("iris")
    rollouts.deploy("iris", 1)
    lam = rollouts.traffic.client
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    del variables[contract.ENV_MODEL_NAME]
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
    versions = len(lam.list_versions_by_function(FunctionName=name)["Versions"])
    with pytest.raises(RolloutError, match=f"lacks {contract.ENV_MODEL_NAME}"):
        rollouts.start_canary("iris", 2, 10)
    assert len(lam.list_versions_by_function(FunctionName=name)["Versions"]) == versions


def test_an_environment_the_caller_cannot_decrypt_is_not_published(rollouts: Rollouts) -> None:
    """A caller without kms:Decrypt on the function's key gets ``Environment.Error`` and no Variables
    (https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentResponse.html). The emulator encrypts
    nothing, so a hook rewrites the real GetFunctionConfiguration answer as AWS would send it."""
    name = rollouts.function_name("iris")
    rollouts.deploy("iris", 1)
    before = rollouts.alias_state("iris")
    lam = rollouts.traffic.client
    versions = len(lam.list_versions_by_function(FunctionName=name)["Versions"])

    def undecryptable(parsed: dict, **_: object) -> None:
        parsed["Environment"] = {
            "Error": {"ErrorCode": "AccessDeniedException", "Message": "Lambda was unable to decrypt"}
        }

    lam.meta.events.register("after-call.lambda.GetFunctionConfiguration", undecryptable)
    try:
        with pytest.raises(RolloutError, match=r"AccessDeniedException.*kms:Decrypt"):
            rollouts.start_canary("iris", 2, 10)
    finally:
        lam.meta.events.unregister("after-call.lambda.GetFunctionConfiguration", undecryptable)
    assert rollouts.alias_state("iris") == before
    assert len(lam.list_versions_by_function(FunctionName=name)["Versions"]) == versions
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    assert variables[contract.ENV_MODEL_NAME] == "iris"  # nothing was written back


def test_tags_that_cannot_be_read_stop_the_rollout_instead_of_reading_zero(rollouts: Rollouts) -> None:
    """GetFunction would silently omit the tags for a caller without lambda:ListTags; ListTags refuses
    with AccessDeniedException. The emulator has no IAM, so a hook answers that refusal."""
    rollouts.deploy("iris", 1)
    before = rollouts.alias_state("iris")
    lam = rollouts.traffic.client

    def denied(**_: object) -> tuple[AWSResponse, dict]:
        return AWSResponse(lam.meta.endpoint_url, 403, {}, None), {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": "not authorized to perform: lambda:ListTags",
            },
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    lam.meta.events.register("before-call.lambda.ListTags", denied)
    try:
        with pytest.raises(RolloutError, match=r"AccessDeniedException.*lambda:ListTags"):
            rollouts.start_canary("iris", 2, 10)
    finally:
        lam.meta.events.unregister("before-call.lambda.ListTags", denied)
    assert rollouts.alias_state("iris") == before


def test_the_same_model_version_rolls_out_when_the_code_or_configuration_changed(rollouts: Rollouts) -> None:
    """A new handler, layer, memory or timeout from an apply reaches traffic as a canary of the live
    model version; with nothing changed, nothing is rolled out."""
    name = rollouts.function_name("iris")
    stable = rollouts.deploy("iris", 1)
    with pytest.raises(RolloutError, match="same code and configuration"):
        rollouts.start_canary("iris", 1, 10)
    lam = rollouts.traffic.client
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    lam.update_function_configuration(FunctionName=name, MemorySize=2048)
    canary = rollouts.start_canary("iris", 1, 10).lambda_version
    state = rollouts.alias_state("iris")
    assert (state.stable_version, state.canary_version) == (stable, canary)
    assert lam.get_function_configuration(FunctionName=name, Qualifier=canary)["MemorySize"] == 2048
    assert rollouts.traffic.pinned_model_version("iris", canary) == "1"


def test_provisioned_concurrency_that_cannot_move_within_reserved_is_refused_before_any_change(
    rollouts: Rollouts,
) -> None:
    name = rollouts.function_name("iris")
    lam = rollouts.traffic.client
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={contract.TAG_PROVISIONED_CONCURRENCY: "2"})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    first = rollouts.deploy("iris", 1)
    assert rollouts.traffic.provisioned("iris") == {first: 2}
    before = rollouts.alias_state("iris")
    with pytest.raises(RolloutError, match="twice provisioned_concurrency"):
        rollouts.deploy("iris", 2)  # 2 on the new version before 2 leave the old one: 4 > 3
    assert rollouts.alias_state("iris") == before and rollouts.traffic.provisioned("iris") == {first: 2}


def test_a_provisioned_concurrency_lambda_refuses_is_undone_and_moves_no_traffic(rollouts: Rollouts) -> None:
    """Without reserved concurrency, provisioned concurrency comes from the account's unreserved pool;
    past it Lambda refuses, and the rollout removes what it configured."""
    name = rollouts.function_name("iris")
    lam = rollouts.traffic.client
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    first = rollouts.deploy("iris", 1)
    lam.tag_resource(Resource=arn, Tags={contract.TAG_PROVISIONED_CONCURRENCY: "950"})  # over 1000 - 100
    before = rollouts.alias_state("iris")
    with pytest.raises(RolloutError, match="Lambda refused provisioned concurrency"):
        rollouts.start_canary("iris", 2, 10)
    assert rollouts.alias_state("iris") == before and before.stable_version == first
    assert rollouts.traffic.provisioned("iris") == {}


def test_prune_keeps_what_traffic_and_a_rollback_need(rollouts: Rollouts) -> None:
    name = rollouts.function_name("iris")
    for model_version in (1, 2, 3, 1, 2):
        rollouts.deploy("iris", model_version)  # deploy prunes after itself, keeping the newest 3
    lam = rollouts.traffic.client
    published = [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]][1:]
    state = rollouts.alias_state("iris")
    previous = rollouts.plan_rollback("iris").after.stable_version  # no canary: the previous stable
    assert state.stable_version in published and previous in published
    assert len(published) == 3, published  # the newest three hold both
    canary = rollouts.start_canary("iris", 3, 10).lambda_version
    # with nothing kept for its age, only what traffic and a rollback need stays
    doomed = rollouts.prune("iris", keep=0, dry_run=True)
    assert doomed and not {canary, state.stable_version, previous} & set(doomed)
    assert {canary, state.stable_version, previous} <= {
        v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]
    }
    rollouts.rollback("iris")
    rollouts.rollback("iris")  # no canary: back to the previous stable version, which was kept
    assert rollouts.alias_state("iris").stable_version == previous


def test_a_rollout_lock_is_renewed_while_a_step_runs_and_taken_over_once_stale(rollouts: Rollouts) -> None:
    short = Rollouts(
        rollouts.service, rollouts.traffic.client, rollouts.platform_name, actor="slow", lock_ttl_s=2
    )
    other = Rollouts(
        rollouts.service, rollouts.traffic.client, rollouts.platform_name, actor="other", lock_ttl_s=2
    )
    with short.lock("iris"):
        time.sleep(3)  # past the 2 s TTL: the heartbeat kept it
        with pytest.raises(ConflictError, match="slow"):
            other.journal.acquire("iris", "other:1", ttl_s=2)
    rollouts.journal.acquire("iris", "crashed:1", ttl_s=1)  # a holder that dies without releasing
    time.sleep(2.2)  # expiry is in whole seconds
    other.journal.acquire("iris", "other:2", ttl_s=2)  # stale: taken over
    assert other.journal.holder("iris")["owner"] == "other:2"
    other.journal.release("iris", "other:2")


def test_requests_that_cannot_be_carried_out_are_refused_and_change_nothing(
    rollouts: Rollouts, examples: dict[str, ExampleModel]
) -> None:
    """Each refusal names the reason; the alias, the Lambda versions and the journal stay as they were."""
    name = rollouts.function_name("iris")
    lam = rollouts.traffic.client
    with pytest.raises(RolloutError, match="no canary and no earlier stable version"):
        rollouts.rollback("iris")  # Terraform's version 1 is all there is
    first = rollouts.deploy("iris", 1)
    before = rollouts.alias_state("iris")
    versions = lam.list_versions_by_function(FunctionName=name)["Versions"]
    events = rollouts.journal.events("iris")
    rollouts.service.register("orphan", examples["iris"].artifact, progress=False)  # no function for it
    refusals = [
        (lambda: rollouts.start_canary("iris", 2, 0), r"canary percentage must be in \(0, 100\]"),
        (lambda: rollouts.start_canary("iris", 2, 100.5), r"canary percentage must be in \(0, 100\]"),
        (lambda: rollouts.start_canary("iris", 1, 10), "already live on Lambda version"),
        (lambda: rollouts.promote("iris"), "has no canary to promote"),
        (lambda: rollouts.progressive("iris", 2, [50, 10], 1, Gate()), "steps must be increasing"),
        (lambda: rollouts.progressive("iris", 2, [0, 100], 1, Gate()), "steps must be increasing"),
        (lambda: rollouts.start_canary("unregistered", 1, 10), "is not registered"),
        (lambda: rollouts.start_canary("orphan", 1, 10), "has no endpoint"),
    ]
    for attempt, message in refusals:
        with pytest.raises((RolloutError, VersionNotFound, ModelNotFound), match=message):
            attempt()
    assert rollouts.alias_state("iris") == before and before.stable_version == first
    assert lam.list_versions_by_function(FunctionName=name)["Versions"] == versions
    assert rollouts.journal.events("iris") == events
    without_cloudwatch = Rollouts(rollouts.service, lam, rollouts.platform_name, actor="no-cw")
    with pytest.raises(RolloutError, match="no CloudWatch client"):
        without_cloudwatch.health("iris", first, datetime.now(UTC))


def test_a_progressive_rollout_without_traffic_is_rolled_back_for_lack_of_evidence(
    rollouts: Rollouts,
) -> None:
    """No request reaches the canary (CloudWatch has nothing for it): the gate cannot judge, so after
    three intervals the canary is rolled back instead of promoted blind."""
    stable = rollouts.deploy("iris", 1)
    said: list[str] = []
    result = rollouts.progressive(
        "iris", 2, [50, 100], interval_s=1, gate=Gate(min_requests=5), say=said.append, poll_s=0.3
    )
    assert result.outcome == "rolled-back" and result.reason.startswith("not enough traffic to judge")
    assert rollouts.alias_state("iris").stable_version == stable
    assert rollouts.alias_state("iris").canary_version is None
    assert any(line.startswith("  canary: 0 requests") for line in said)


def test_ctrl_c_during_a_progressive_rollout_drops_the_canary_and_says_what_is_live(
    rollouts: Rollouts,
) -> None:
    stable = rollouts.deploy("iris", 1)
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if line.startswith("  canary:"):
            raise KeyboardInterrupt  # the operator presses Ctrl-C while the gate watches

    with pytest.raises(KeyboardInterrupt):
        rollouts.progressive("iris", 2, [10, 100], interval_s=5, gate=Gate(), say=say, poll_s=0.2)
    state = rollouts.alias_state("iris")
    assert (state.stable_version, state.canary_version) == (stable, None)
    assert (
        said[-1] == f"interrupted: all traffic on stable Lambda version {stable} (model v1); canary dropped"
    )
    assert rollouts.journal.events("iris")[0]["action"] == "auto-rollback"


def test_a_canary_replaced_by_someone_else_stops_the_progressive_rollout(rollouts: Rollouts) -> None:
    rollouts.deploy("iris", 1)
    other = Rollouts(rollouts.service, rollouts.traffic.client, rollouts.platform_name, actor="someone-else")
    replaced: list[str] = []

    def say(line: str) -> None:
        if line.startswith("  canary:") and not replaced:  # while the first step is watched
            other.rollback("iris", reason="mine now")
            replaced.append(other.start_canary("iris", 3, 20).lambda_version)

    with pytest.raises(RolloutError, match="changed under this rollout"):
        rollouts.progressive(
            "iris", 2, [10, 50, 100], interval_s=0.5, gate=Gate(min_requests=0), say=say, poll_s=0.2
        )
    assert rollouts.alias_state("iris").canary_version == replaced[0]  # the other rollout's canary stays


def test_an_alias_changed_since_it_was_read_is_not_overwritten(rollouts: Rollouts) -> None:
    """Every alias update carries the RevisionId it was computed from: Lambda refuses it with
    PreconditionFailedException when someone changed the alias in between."""
    rollouts.deploy("iris", 1)
    state = rollouts.alias_state("iris")
    canary = rollouts.publish("iris", 2)
    rollouts.traffic.set_alias(
        "iris", AliasState(state.stable_version, canary, 0.1), state.revision_id
    )  # someone else's change
    with pytest.raises(RolloutError, match="changed during this operation"):
        rollouts.traffic.set_alias(
            "iris", AliasState(state.stable_version), state.revision_id
        )  # the stale read
    assert rollouts.alias_state("iris").canary_version == canary


def test_provisioned_concurrency_that_fails_to_allocate_is_undone_and_moves_no_traffic(
    rollouts: Rollouts,
) -> None:
    """Lambda reports FAILED when it cannot allocate the environments (e.g. init fails in them); the
    emulator always allocates, so a hook rewrites its real answer for the canary's version."""
    lam = rollouts.traffic.client
    arn = lam.get_function_configuration(FunctionName=rollouts.function_name("iris"))["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={contract.TAG_PROVISIONED_CONCURRENCY: "2"})
    stable = rollouts.deploy("iris", 1)
    before = rollouts.alias_state("iris")

    def failed(parsed: dict, **_: object) -> None:
        if parsed.get("RequestedProvisionedConcurrentExecutions") == 1:  # the canary's share
            parsed.update(Status="FAILED", StatusReason="FUNCTION_ERROR_INIT_FAILURE")

    lam.meta.events.register("after-call.lambda.GetProvisionedConcurrencyConfig", failed)
    try:
        with pytest.raises(
            RolloutError, match="is FAILED: FUNCTION_ERROR_INIT_FAILURE; traffic was not moved"
        ):
            rollouts.start_canary("iris", 2, 10)
    finally:
        lam.meta.events.unregister("after-call.lambda.GetProvisionedConcurrencyConfig", failed)
    assert rollouts.alias_state("iris") == before
    assert rollouts.traffic.provisioned("iris") == {stable: 2}  # the canary's was removed, the stable's kept
