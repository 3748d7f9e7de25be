#!/usr/bin/env python3
"""Register a model version: a thin wrapper of ``modelctl register``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from model_registry.cli import main as modelctl


def main(argv: Sequence[str] | None = None) -> int:
    """Same arguments as ``modelctl register NAME ARTIFACT ...``."""
    return modelctl(["register", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
