#!/usr/bin/env python3
"""Train the example models on scikit-learn's bundled datasets and write their artifacts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from examples.models import TRAINERS, train_all


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/examples"), help="output folder")
    parser.add_argument("--only", action="append", choices=sorted(TRAINERS), help="train only these")
    args = parser.parse_args(argv)
    for example in train_all(args.out, args.only):
        metrics = ", ".join(f"{k}={v:.3f}" for k, v in example.metrics.items())
        print(f"trained {example.name:14} -> {example.artifact} ({metrics})")
    print(f"manifest: {args.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
