#!/usr/bin/env python3
"""Run the platform locally: the AWS emulator, the registry, the example models (``make up``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from local_platform.launcher import run_up


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything and serve until Ctrl-C")
    up.add_argument("--emulator-port", type=int, default=5005, help="moto server port (default 5005)")
    up.add_argument("--port", type=int, default=8080, help="local data plane port (default 8080)")
    up.add_argument("--state-dir", default=".local", help="where the env file and logs go")
    up.add_argument(
        "--var-file",
        action="append",
        type=Path,
        default=[],
        help="extra Terraform variables, after terraform.tfvars (e.g. terraform/examples/snapstart.tfvars)",
    )
    args = parser.parse_args(argv)
    for var_file in args.var_file:
        if not var_file.is_file():
            parser.error(f"--var-file {var_file}: no such file")
    return run_up(args.emulator_port, args.port, args.state_dir, [p.resolve() for p in args.var_file])


if __name__ == "__main__":
    sys.exit(main())
