#!/usr/bin/env python3
"""Build the Lambda function zip and the per-framework dependency layers into build/lambda."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from model_registry.core import contract
from tooling.glibc import GlibcTooNew
from tooling.packaging import (
    DEFAULT_RUNTIME,
    LAMBDA_UNZIPPED_LIMIT,
    LAYER_FRAMEWORKS,
    build_all,
    check_size,
    python_version,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/lambda"), help="output folder")
    parser.add_argument("--framework", action="append", choices=LAYER_FRAMEWORKS, help="only these layers")
    parser.add_argument(
        "--runtime",
        default=DEFAULT_RUNTIME,
        help=f"Lambda runtime to build the layers for: {', '.join(contract.LAMBDA_RUNTIMES)} "
        f"(default {DEFAULT_RUNTIME}); the layers' shared objects must load on its OS's glibc",
    )
    args = parser.parse_args(argv)
    try:
        python_version(args.runtime)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        built = build_all(
            args.out,
            args.runtime,
            args.framework or LAYER_FRAMEWORKS,
            log=lambda m: print(f"  {m}", flush=True),
        )
    except (GlibcTooNew, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    function = built.function
    print(f"function.zip        {function.unzipped_mb:8.1f} MB unzipped  sha256 {function.sha256[:16]}")
    failed = False
    for framework, layer in built.layers.items():
        total_mb = (layer.unzipped_bytes + function.unzipped_bytes) / 1024 / 1024
        print(
            f"layer-{framework + '.zip':13} {layer.unzipped_mb:8.1f} MB unzipped  "
            f"sha256 {layer.sha256[:16]}  "
            f"with function: {total_mb:.1f} / {LAMBDA_UNZIPPED_LIMIT // 1024 // 1024} MB"
        )
        try:
            check_size(function, layer)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
    facts = contract.lambda_runtime(built.runtime)
    for framework, report in built.glibc.items():
        highest = report.highest
        needed = f"GLIBC_{highest.version} ({highest.path})" if highest else "no glibc symbols"
        print(f"layer-{framework + ':':13} {report.objects} shared objects scanned, newest needed {needed}")
    print(f"layers built for {built.runtime} on {facts.os}, glibc {facts.glibc} ({args.out / 'build.json'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
