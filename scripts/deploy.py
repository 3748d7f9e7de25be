#!/usr/bin/env python3
"""Run terraform init/plan/apply/destroy/output on terraform/ against AWS or the local emulator.

apply saves a plan, checks how it moves models between the dedicated tier and the pool (see
tooling/tier_moves.py: a model leaves its function in two applies, drain = true first), and applies
exactly that plan."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tooling.deploy import TARGETS, DeployError, Deployment


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["init", "plan", "apply", "destroy", "output"])
    parser.add_argument(
        "--target", choices=TARGETS, default="aws", help="aws (default) or local (the emulator)"
    )
    parser.add_argument("--endpoint-url", help="emulator URL for --target local, e.g. http://127.0.0.1:5005")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--state", type=Path, help="local state file (default: terraform's own)")
    parser.add_argument(
        "--var-file", type=Path, action="append", default=[], help="extra .tfvars (repeatable)"
    )
    parser.add_argument(
        "--allow-interruption",
        action="store_true",
        help="apply even when the plan moves models between the dedicated tier and the pool in a way that "
        "can fail requests (a model's routes and function removed together, a canary in flight, a version "
        "the pool or the new function's layer cannot load); without it such a plan is refused and nothing "
        "is applied",
    )
    args = parser.parse_args(argv)
    try:
        deployment = Deployment(
            args.target, args.endpoint_url, args.region, args.state, args.var_file, stream=True
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        if args.command == "init":
            deployment.init()
        elif args.command == "plan":
            print("changes pending" if deployment.plan() else "no changes")
        elif args.command == "apply":
            deployment.apply(allow_interruption=args.allow_interruption)
        elif args.command == "destroy":
            deployment.destroy()
        else:
            deployment.stream = False
            print(json.dumps(deployment.outputs(), indent=2))
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
