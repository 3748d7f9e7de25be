"""The local Lambda service's environment pool, without processes: reuse, the concurrency limit,
eviction order, provisioned environments and idle reclaim. Process-backed environments run through the
same pool in tests/integration/test_snapstart_runtime.py and every e2e test."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from local_platform.runtime import ExecutionEnvironment, FunctionPool, VersionSpec

_pids = count(1000)


@dataclass(eq=False)
class StandIn:
    """What the pool reads of an environment (a process here would only slow the test down)."""

    spec: VersionSpec
    provisioned: bool = False
    alive: bool = True
    ready: bool = True
    idle_since: float = 0.0
    pid: int = field(default_factory=lambda: next(_pids))

    def stop(self) -> None:
        self.alive = False


def _spec(version: str) -> VersionSpec:
    return VersionSpec(
        "fn",
        version,
        "functions.handler.handler",
        30,
        512,
        {},
        Path("."),
        (),
        f"arn:aws:lambda:::function:fn:{version}",
    )


def _create(spec: VersionSpec) -> ExecutionEnvironment:
    return StandIn(spec)  # type: ignore[return-value]


def test_an_idle_environment_is_reused_before_a_new_one_starts() -> None:
    pool = FunctionPool("fn")
    first, new = pool.acquire(_spec("1"), 2, _create)
    assert first is not None and new
    pool.release(first)
    again, new = pool.acquire(_spec("1"), 2, _create)
    assert again is first and not new
    assert pool.sizes == (1, 0)


def test_at_the_limit_an_idle_environment_of_another_version_is_evicted_else_throttled() -> None:
    pool = FunctionPool("fn")
    old, _ = pool.acquire(_spec("1"), 2, _create)
    busy, _ = pool.acquire(_spec("1"), 2, _create)
    assert old is not None and busy is not None
    pool.release(old)
    canary, new = pool.acquire(_spec("2"), 2, _create)
    assert new and canary is not None and not old.alive  # the idle v1 made room
    assert pool.acquire(_spec("2"), 2, _create) == (None, False)  # both busy: throttled (429)
    pool.release(busy)
    assert pool.sizes == (1, 1)


def test_provisioned_environments_are_evicted_last_and_never_reclaimed_as_idle() -> None:
    pool = FunctionPool("fn")
    provisioned = StandIn(_spec("1"))
    assert pool.add_provisioned(provisioned, limit=2)  # type: ignore[arg-type]
    serving, new = pool.acquire(_spec("1"), 2, _create)
    assert serving is provisioned and not new  # requests go to provisioned environments first
    on_demand, new = pool.acquire(_spec("1"), 2, _create)
    assert on_demand is not None and new
    pool.release(on_demand)
    pool.release(serving)
    assert pool.provisioned_pids() == {"1": [provisioned.pid]}
    assert pool.reclaim_idle(idle_for_s=0) == 1 and not on_demand.alive and provisioned.alive
    assert not pool.add_provisioned(StandIn(_spec("1")), limit=1)  # type: ignore[arg-type]
    assert pool.update_provisioned({"1": 2}) == {"1": 1}  # one more to start
    assert pool.update_provisioned({}) == {} and not provisioned.provisioned


def test_a_dead_or_unready_environment_is_not_handed_out_again() -> None:
    pool = FunctionPool("fn")
    environment, _ = pool.acquire(_spec("1"), 3, _create)
    assert environment is not None
    environment.ready = False  # its init failed
    pool.release(environment)
    again, new = pool.acquire(_spec("1"), 3, _create)
    assert new and again is not environment


def test_concurrent_acquires_never_exceed_the_limit() -> None:
    pool = FunctionPool("fn")
    got: list[object] = []
    lock = threading.Lock()

    def take() -> None:
        environment, _ = pool.acquire(_spec("1"), 5, _create)
        with lock:
            got.append(environment)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(e is not None for e in got) == 5 and pool.sizes == (5, 0)
    pool.stop_all()
    assert all(not e.alive for e in got if e is not None)
