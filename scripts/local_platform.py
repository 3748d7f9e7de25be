#!/usr/bin/env python3
"""Run the platform locally: the AWS emulator, the registry, the example models (``make up``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from model_registry.local.launcher import run_up


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything and serve until Ctrl-C")
    up.add_argument("--emulator-port", type=int, default=5005, help="moto server port (default 5005)")
    up.add_argument("--port", type=int, default=8080, help="local data plane port (default 8080)")
    up.add_argument("--state-dir", default=".local", help="where the env file and logs go")
    args = parser.parse_args(argv)
    return run_up(args.emulator_port, args.port, args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
