"""``modelctl``: register and inspect model versions, and move traffic between them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from model_registry.cli.arguments import load_env_file
from model_registry.cli.registry_commands import add_registry_commands
from model_registry.cli.rollout_commands import add_rollout_commands
from model_registry.core.errors import RegistryError

LOCAL_ENV_FILE = Path(".local/platform.env")


def build_parser() -> argparse.ArgumentParser:
    """The ``modelctl`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="modelctl",
        description="Register model versions and inspect the model registry. Configuration comes from "
        "MODEL_REGISTRY_TABLE, MODEL_ARTIFACT_BUCKET, AWS_REGION and AWS_ENDPOINT_URL, or from the file "
        "written by `make up` (--local).",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help=f"use the local platform started by `make up` (reads {LOCAL_ENV_FILE})",
    )
    parser.add_argument("--env-file", type=Path, help="read settings from this KEY=VALUE file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_registry_commands(sub)
    add_rollout_commands(sub)
    # `modelctl show iris 3 --json` works as well as `modelctl --json show iris 3`
    for command in sub.choices.values():
        command.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of a table"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``modelctl``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    env_file = args.env_file or (LOCAL_ENV_FILE if args.local else None)
    if env_file is not None:
        if not env_file.exists():
            print(f"modelctl: error: {env_file} not found (is `make up` running?)", file=sys.stderr)
            return 2
        os.environ.update(load_env_file(env_file))
    try:
        return int(args.func(args))
    except RegistryError as exc:
        print(f"modelctl: error: {exc.message}", file=sys.stderr)
        return 1
