"""How long ``terraform plan`` of the platform takes against the emulator as dedicated models grow.

    python -m tooling.plan_timing --models 3 25 72

Each count gets a fresh emulator and state (so the plan creates everything) and a var file with that
many dedicated models; the pooled tier is on (its models add nothing to plan: they are registry data).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from local_platform.emulator import Emulator
from tooling.deploy import Deployment


def plan_seconds(count: int, folder: Path) -> tuple[float, int]:
    """Seconds of one ``terraform plan`` with ``count`` dedicated models, and the resources it adds."""
    var_file = folder / f"models-{count}.tfvars.json"
    var_file.write_text(
        json.dumps({"models": {f"model-{i:03d}": {"framework": "sklearn"} for i in range(count)}})
    )
    with Emulator() as emulator:
        deployment = Deployment(
            target="local",
            endpoint_url=emulator.url,
            state_path=folder / f"{count}.tfstate",
            var_files=[var_file],
        )
        deployment.init()
        started = time.perf_counter()
        output = deployment.plan_text()
        elapsed = time.perf_counter() - started
    summary = next((line for line in output.splitlines() if line.startswith("Plan:")), "")
    return elapsed, int(summary.split()[1]) if summary else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[3, 25, 72])
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="plan-timing-"))
    for count in args.models:
        seconds, resources = plan_seconds(count, folder)
        print(
            f"{count} dedicated models: terraform plan {seconds:.1f} s, {resources} resources to add",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
