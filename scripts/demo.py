#!/usr/bin/env python3
"""A scripted tour on top of `make up`: canary at 20%, 1,000 requests, promote, roll back."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from local_platform.demo import run_demo
from model_registry.cli import load_env_file


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--state-dir", type=Path, default=Path(".local"), help="where `make up` keeps its state"
    )
    args = parser.parse_args(argv)
    env_file = args.state_dir / "platform.env"
    if not env_file.exists():
        print(
            f"demo: {env_file} not found: start the platform with `make up` in another terminal first",
            file=sys.stderr,
        )
        return 2
    os.environ.update(load_env_file(env_file))
    url = os.environ.get("MODEL_PLATFORM_URL", "")
    try:
        requests.get(f"{url}/v2/models/iris/ready", timeout=30)
    except requests.RequestException:
        print(
            f"demo: the local platform does not answer on {url!r}: is `make up` still running?",
            file=sys.stderr,
        )
        return 2
    return run_demo(url, args.state_dir, print)


if __name__ == "__main__":
    sys.exit(main())
