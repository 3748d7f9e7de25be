"""Argument types of ``modelctl`` and its settings file: pure parsing, unit-tested without AWS."""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_tag(text: str) -> tuple[str, str]:
    """``key=value`` of ``--tag``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"tag must look like key=value, got {text!r}")
    return key, value


def positive_int(text: str) -> int:
    """A version number: an integer from 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a version number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"version numbers start at 1, got {value}")
    return value


def percent(text: str) -> float:
    """``10`` or ``1.5%``: a percentage in [0, 100]."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage like 10 or 1.5%, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"percentages are between 0 and 100, got {value}")
    return value


def steps(text: str) -> list[float]:
    """``10,50,100``: percentages."""
    return [percent(part) for part in text.split(",") if part.strip()]


def duration(text: str) -> float:
    """``90``, ``60s``, ``2m`` or ``1h``, in seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"expected a duration like 60s or 2m, got {text!r}") from None


def load_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines (``export`` prefixes and comments allowed)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def page_size(text: str) -> int:
    """Models per page: 1 to 1000 (the registry's page limit)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of models, got {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"a page holds 1 to 1000 models, got {value}")
    return value


def add_paging(parser: argparse.ArgumentParser, default_limit: int) -> None:
    """``--limit`` and ``--next-token`` of the commands that page through the models."""
    parser.add_argument(
        "--limit",
        type=page_size,
        default=default_limit,
        help=f"models per page, 1-1000 (default {default_limit})",
    )
    parser.add_argument("--next-token", metavar="NAME", help="the page after this model name")
