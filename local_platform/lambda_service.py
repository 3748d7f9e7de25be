"""The local Lambda service: execution environments per function version (created up to the function's
concurrency, reused, reclaimed), provisioned concurrency kept warm, SnapStart snapshots taken and
restored, the runtime OS's rules, and the AWS/Lambda metrics and platform log lines Lambda writes."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_platform.aws_rules.control import set_version_state
from local_platform.control_plane import ControlPlane
from local_platform.routes import Route
from local_platform.runtime import (
    ON_DEMAND,
    ExecutionEnvironment,
    FunctionPool,
    Outcome,
    RestoredEnvironment,
    RuntimeUnavailable,
    Snapshot,
    SnapshotFailed,
    VersionSpec,
)
from local_platform.telemetry import Telemetry
from tooling.glibc import GlibcTooNew
from tooling.packaging import check_glibc, install_runtime

LOG = logging.getLogger("dataplane")
IDLE_ENVIRONMENT_S = 600.0  # Lambda reclaims environments idle for minutes; so does the data plane


class LambdaService:
    """Invocations of the functions one HTTP API integrates with, as the Lambda service runs them."""

    def __init__(
        self,
        control: ControlPlane,
        lambda_client: Any,
        telemetry: Telemetry,
        *,
        emulator_url: str,
        region: str,
        state_dir: Path,
        runtime_dir: Path,
        base_env: dict[str, str],
    ) -> None:
        self.control = control
        self._lambda = lambda_client
        self.telemetry = telemetry
        self.emulator_url = emulator_url
        self.region = region
        self.state_dir = state_dir
        self.runtime_dir = runtime_dir  # holds runtime-<runtime>/: what each Lambda runtime provides
        self._base_env = base_env
        self._pools: dict[str, FunctionPool] = {}
        self._runtimes: dict[str, list[Path]] = {}
        self._os_refusals: dict[tuple[Path, str], dict[str, Any] | None] = {}
        self._version_states: dict[tuple[str, str], str] = {}  # SnapStart versions, read by housekeeping
        self._lock = threading.Lock()

    def _pool(self, function_name: str) -> FunctionPool:
        with self._lock:
            return self._pools.setdefault(function_name, FunctionPool(function_name))

    def invoke(self, route: Route, version: str, event: dict[str, Any], request_id: str) -> Outcome:
        """Run one invocation in an execution environment of ``version``; record its metrics."""
        function_name = route.function_name
        spec = self.control.spec(function_name, version)
        os_refusal = self.os_refusal(spec)
        if os_refusal is not None:
            self._report_import_failure(spec, os_refusal)
        refusal = os_refusal or (self._not_ready(spec) if spec.snap_start else None)
        if refusal is not None:
            not_started = Outcome("init_error", error=refusal, version=version)
            self._record(route, version, not_started)
            return not_started
        pool = self._pool(function_name)
        try:
            environment, cold = pool.acquire(
                spec, self.control.concurrency_limit(function_name), self._new_environment
            )
        except (RuntimeUnavailable, SnapshotFailed) as exc:
            refused = Outcome("init_error", error=exc.error, version=version)
            self._record(route, version, refused)
            return refused
        if environment is None:
            self._record(route, version, Outcome("throttled"))
            return Outcome("throttled", version=version)
        timeout = min(spec.timeout_s, route.timeout_s)
        if cold:
            failed = environment.wait_ready()
            if failed is not None and failed.kind == "init_timeout" and environment.init_type == ON_DEMAND:
                # Lambda retries an init that overran its 10 s at the first invocation, within the
                # function's timeout: init and invocation then share that budget.
                self._report_init_failure(environment, failed)
                environment = pool.replace(environment, self._new_environment(spec))
                failed = environment.wait_ready(timeout)
                timeout -= ((failed.init_ms if failed else environment.init_ms) or 0.0) / 1000
            if failed is not None:
                self._report_init_failure(environment, failed)
                pool.discard(environment)
                failed.version = version
                self._record(route, version, failed)
                return failed
            self._report_cold_start(environment)
        context = {
            "function_name": function_name,
            "function_version": spec.version,
            "invoked_function_arn": route.integration_arn,
            "memory_limit_in_mb": spec.memory_mb,
            "aws_request_id": request_id,
            "log_group_name": environment.log_group,
            "log_stream_name": environment.log_stream,
        }
        outcome = environment.invoke(event, context, max(timeout, 0.001))
        outcome.version = spec.version
        outcome.init_ms = environment.init_ms if cold else None
        pool.release(environment)
        self._record(route, spec.version, outcome)
        return outcome

    def runtime_paths(self, runtime: str) -> list[Path]:
        """What the Lambda ``runtime`` itself puts on the path (boto3, awslambdaric), installed once."""
        with self._lock:
            if runtime not in self._runtimes:
                self._runtimes[runtime] = [
                    install_runtime(self.runtime_dir, runtime, log=LOG.info) / "python"
                ]
            return self._runtimes[runtime]

    def os_refusal(self, spec: VersionSpec) -> dict[str, Any] | None:
        """The import error Lambda would give for code or layers whose shared objects need a newer glibc
        than the runtime's OS provides (this machine's would load them): None when they all load."""
        packages = [(spec.code_dir, "the function code")]
        packages += [(layer, f"layer {layer.name[:12]}") for layer in spec.layer_dirs]
        for directory, what in packages:
            key = (directory, spec.runtime)
            if key not in self._os_refusals:
                try:
                    check_glibc(directory, spec.runtime, what)
                    self._os_refusals[key] = None
                except (GlibcTooNew, ValueError) as exc:
                    self._os_refusals[key] = {
                        "errorType": "Runtime.ImportModuleError",
                        "errorMessage": f"Unable to import module '{spec.handler.rpartition('.')[0]}': {exc}",
                    }
            if self._os_refusals[key] is not None:
                return self._os_refusals[key]
        return None

    def _new_environment(self, spec: VersionSpec, *, provisioned: bool = False) -> ExecutionEnvironment:
        if spec.snap_start:  # SnapStart: restore from the version's snapshot instead of running init
            return self._pool(spec.function_name).snapshot(spec, self._take_snapshot).restore()
        return ExecutionEnvironment(
            spec,
            self._base_env,
            self.runtime_paths(spec.runtime),
            self.telemetry.log,
            provisioned=provisioned,
        )

    def _take_snapshot(self, spec: VersionSpec) -> Snapshot:
        refusal = self.os_refusal(spec)
        if refusal is not None:
            raise SnapshotFailed(refusal)
        snapshot = Snapshot(spec, self._base_env, self.runtime_paths(spec.runtime), self.telemetry.log)
        failed = snapshot.wait_ready()
        if failed is not None:
            self._report_init_failure(snapshot, failed)
            raise SnapshotFailed(failed.error)
        self._report_cold_start(snapshot)
        return snapshot

    def _report_cold_start(self, environment: ExecutionEnvironment) -> None:
        """Lambda's INIT_REPORT / RESTORE_REPORT line, in the environment's log stream."""
        kind = "Restore" if isinstance(environment, RestoredEnvironment) else "Init"
        line = f"{kind.upper()}_REPORT {kind} Duration: {environment.init_ms or 0.0:.2f} ms"
        self.telemetry.log(environment.log_group, environment.log_stream, line)

    def _report_import_failure(self, spec: VersionSpec, error: dict[str, Any]) -> None:
        """What Lambda logs when the handler's module cannot be imported: the error, then the init report,
        in a new environment's stream (each failed attempt starts a new environment)."""
        group = f"/aws/lambda/{spec.function_name}"
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{spec.version}]{uuid.uuid4().hex[:12]}"
        self.telemetry.log(group, stream, f"[ERROR] {error['errorType']}: {error['errorMessage']}")
        report = "INIT_REPORT Init Duration: 0.00 ms\tPhase: init\tStatus: error"
        self.telemetry.log(group, stream, f"{report}\tError Type: {error['errorType']}")

    def _report_init_failure(self, environment: ExecutionEnvironment, failed: Outcome) -> None:
        status = "timeout" if failed.kind == "init_timeout" else "error"
        error = f"\tError Type: {failed.error.get('errorType', '')}" if status == "error" else ""
        line = (
            f"INIT_REPORT Init Duration: {failed.init_ms or 0.0:.2f} ms\tPhase: init\tStatus: {status}{error}"
        )
        self.telemetry.log(environment.log_group, environment.log_stream, line)

    def snapshot_pids(self, function_name: str) -> dict[str, int]:
        """Process ids of a function's SnapStart snapshots, per version."""
        return self._pool(function_name).snapshot_pids()

    def _record(self, route: Route, version: str, outcome: Outcome) -> None:
        """AWS/Lambda metrics for one invocation, with exactly the dimension sets Lambda publishes: all
        functions (none), ``FunctionName``, ``FunctionName`` + ``Resource`` (the qualifier invoked), and for
        an alias also ``ExecutedVersion`` (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html;
        "ExecutedVersion ... only applies to alias invocations")."""
        name = route.function_name
        dimension_sets: list[dict[str, str]] = [{}, {"FunctionName": name}]
        if route.qualifier and route.qualifier != "$LATEST":
            resource = {"FunctionName": name, "Resource": f"{name}:{route.qualifier}"}
            dimension_sets.append(resource)
            if not route.qualifier.isdigit() and version:
                dimension_sets.append({**resource, "ExecutedVersion": version})
        for dimensions in dimension_sets:
            if outcome.kind == "throttled":
                self.telemetry.metric("AWS/Lambda", "Throttles", 1, "Count", dimensions)
                continue
            self.telemetry.metric("AWS/Lambda", "Invocations", 1, "Count", dimensions)
            self.telemetry.metric(
                "AWS/Lambda", "Errors", float(outcome.kind != "result"), "Count", dimensions
            )
            self.telemetry.metric("AWS/Lambda", "Duration", outcome.duration_ms, "Milliseconds", dimensions)

    def environment_counts(self) -> dict[str, tuple[int, int]]:
        """(busy, idle) environments per function."""
        with self._lock:
            return {name: pool.sizes for name, pool in self._pools.items()}

    def provision(self) -> dict[str, dict[str, int]]:
        """Keep as many initialised environments per version as its provisioned concurrency asks for,
        started ahead of traffic as Lambda does. Returns function -> version -> environments started."""
        started: dict[str, dict[str, int]] = {}
        for function_name in sorted({route.function_name for route in self.control.routes()}):
            try:
                configs = self._lambda.list_provisioned_concurrency_configs(FunctionName=function_name)
            except (BotoCoreError, ClientError):
                continue  # the emulator is away: keep what is provisioned
            wanted = {
                c["FunctionArn"].rsplit(":", 1)[1]: int(c["RequestedProvisionedConcurrentExecutions"])
                for c in configs.get("ProvisionedConcurrencyConfigs", [])
            }
            pool = self._pool(function_name)
            for version, missing in pool.update_provisioned(wanted).items():
                if not version.isdigit():
                    continue  # on an alias: rollouts put it on versions
                spec = self.control.spec(function_name, version)
                limit = self.control.concurrency_limit(function_name)
                for _ in range(missing):
                    environment = self._new_environment(spec, provisioned=True)
                    if environment.wait_ready() is not None or not pool.add_provisioned(environment, limit):
                        break
                    started.setdefault(function_name, {}).setdefault(version, 0)
                    started[function_name][version] += 1
        return started

    def prepare_snapshots(self) -> list[tuple[str, str]]:
        """Do what Lambda does for SnapStart versions: take the snapshot of every ``Pending`` version (a
        published one, or an ``Inactive`` one being re-activated) and report it ``Active`` or ``Failed``;
        drop the snapshot of an ``Inactive`` version; keep one for every ``Active`` version an alias
        routes to. Returns the (function, version) pairs snapshotted now."""
        taken = []
        for function_name in sorted({r.function_name for r in self.control.routes()}):
            try:
                states = self._snap_start_states(function_name)
                routed = self._routed_versions(function_name)
            except (BotoCoreError, ClientError) as exc:
                LOG.warning("SnapStart versions of %s not read: %s", function_name, exc)
                continue
            pool = self._pool(function_name)
            for version, state in sorted(states.items()):
                if state == "Inactive":
                    pool.drop_snapshot(version)
                    continue
                wanted = state == "Pending" or (state == "Active" and version in routed)
                if not wanted or version in pool.snapshot_pids():
                    continue
                try:
                    pool.snapshot(self.control.spec(function_name, version), self._take_snapshot)
                except SnapshotFailed as exc:
                    LOG.warning("snapshot of %s:%s failed: %s", function_name, version, exc)
                    if state == "Pending":
                        reason = f"The snapshot could not be taken: {exc}"[:1000]
                        self._set_state(
                            function_name, version, "Failed", reason, "FunctionError.RuntimeInitError"
                        )
                    continue
                except (BotoCoreError, ClientError) as exc:
                    LOG.warning("snapshot of %s:%s not taken: %s", function_name, version, exc)
                    continue
                if state == "Pending":
                    self._set_state(function_name, version, "Active")
                taken.append((function_name, version))
        return taken

    def _snap_start_states(self, function_name: str) -> dict[str, str]:
        """State of each published SnapStart version of a function (remembered for the request path)."""
        states = {}
        for page in self._lambda.get_paginator("list_versions_by_function").paginate(
            FunctionName=function_name
        ):
            for config in page["Versions"]:
                if (
                    config["Version"] != "$LATEST"
                    and (config.get("SnapStart") or {}).get("OptimizationStatus") == "On"
                ):
                    states[config["Version"]] = config.get("State", "Active")
        for version, state in states.items():
            self._version_states[(function_name, version)] = state
        return states

    def _routed_versions(self, function_name: str) -> set[str]:
        versions: set[str] = set()
        for route in self.control.routes():
            if route.function_name == function_name and route.qualifier and not route.qualifier.isdigit():
                version, weights = self.control.alias(function_name, route.qualifier)
                versions |= {version, *weights}
        return versions

    def _set_state(
        self, function_name: str, version: str, state: str, reason: str = "", code: str = ""
    ) -> None:
        set_version_state(self.emulator_url, function_name, version, state, reason, code, region=self.region)
        self._version_states[(function_name, version)] = state

    def _not_ready(self, spec: VersionSpec) -> dict[str, Any] | None:
        """Lambda does not run a version that is not Active: an Inactive SnapStart version fails with
        SnapStartNotReadyException and is re-activated (Pending until its snapshot is taken again)
        (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-troubleshooting.html)."""
        state = self._version_states.get(spec.key, "Active")
        if state == "Active":
            return None
        if state == "Inactive":
            self._set_state(
                spec.function_name, spec.version, "Pending", "Lambda is restoring the snapshot", "Restoring"
            )
            return {
                "errorType": "SnapStartNotReadyException",
                "errorMessage": "Lambda is initializing your function. It will be ready to invoke once your "
                "function state becomes ACTIVE.",
            }
        return {
            "errorType": "ResourceConflictException",
            "errorMessage": f"The function is currently in the following state: {state}",
        }

    def provisioned_pids(self, function_name: str) -> dict[str, list[int]]:
        """Process ids of a function's provisioned environments, per version."""
        return self._pool(function_name).provisioned_pids()

    def reclaim_idle(self, idle_for_s: float = IDLE_ENVIRONMENT_S) -> int:
        """Stop environments idle for ``idle_for_s`` or more (next request cold-starts); returns how many."""
        with self._lock:
            pools = list(self._pools.values())
        return sum(pool.reclaim_idle(idle_for_s) for pool in pools)

    def worker_pids(self) -> list[int]:
        """Process ids of every execution environment (busy or idle)."""
        with self._lock:
            return [pid for pool in self._pools.values() for pid in pool.pids()]

    def stop(self) -> None:
        """Stop every execution environment and snapshot."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.stop_all()
