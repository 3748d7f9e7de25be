"""``modelctl``: register and inspect model versions (and, with rollouts, move traffic)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model_registry.errors import InvalidInput, RegistryError
from model_registry.loaders import FRAMEWORKS
from model_registry.settings import Settings

LOCAL_ENV_FILE = Path(".local/platform.env")


def _parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"tag must look like key=value, got {text!r}")
    return key, value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a version number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"version numbers start at 1, got {value}")
    return value


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


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _service(args: argparse.Namespace) -> Any:
    from model_registry.service import RegistryService

    return RegistryService.from_settings(Settings.from_env())


def cmd_register(args: argparse.Namespace) -> int:
    metrics: dict[str, float] = {}
    if args.metrics:
        try:
            metrics = json.loads(Path(args.metrics).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read metrics file {args.metrics}: {exc}") from exc
        if not isinstance(metrics, dict):
            raise InvalidInput(f"metrics file {args.metrics} must hold a JSON object of name: number")
    record = _service(args).register(
        args.name,
        Path(args.artifact),
        framework=args.framework,
        description=args.description,
        tags=dict(args.tag),
        metrics=metrics,
        feature_names=args.feature_names.split(",") if args.feature_names else None,
        created_by=os.environ.get("MODELCTL_USER") or getpass.getuser(),
        source_commit=args.source_commit if args.source_commit is not None else _git_commit(),
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        print(
            f"registered {record.model_name} version {record.version} "
            f"({record.artifact_format}, sha256 {record.sha256[:12]}, {record.size_bytes} bytes)"
        )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    models = _service(args).store.list_models()
    rows = [vars(m) for m in models]
    print(
        json.dumps(rows, indent=2)
        if args.json
        else _table(rows, ["model_name", "latest_version", "updated_at"])
    )
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    records = _service(args).store.list_versions(args.name)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return 0
    rows = [
        {
            "version": r.version,
            "framework": r.framework,
            "format": r.artifact_format,
            "status": r.status,
            "features": r.signature.n_features,
            "sha256": r.sha256[:12],
            "created_at": r.created_at,
            "description": r.description[:40],
        }
        for r in records
    ]
    print(
        _table(
            rows,
            ["version", "framework", "format", "status", "features", "sha256", "created_at", "description"],
        )
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    record = _service(args).store.get_version(args.name, args.version)
    data = record.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        print(f"{key:16} {shown}")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    record = _service(args).store.archive_version(args.name, args.version)
    print(
        json.dumps(record.to_dict(), indent=2)
        if args.json
        else f"archived {record.model_name} v{record.version}"
    )
    return 0


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

    register = sub.add_parser(
        "register",
        help="register a new model version",
        description="Upload ARTIFACT and record it as the next version of NAME.",
    )
    register.add_argument("name", help="model name: lower-case letters, digits, dashes")
    register.add_argument(
        "artifact", help="model file: .skops, .joblib (if pickle is allowed), XGBoost .json/.ubj"
    )
    register.add_argument("--framework", choices=FRAMEWORKS, help="expected framework (default: detected)")
    register.add_argument("--description", default="", help="free-text description")
    register.add_argument(
        "--tag",
        action="append",
        default=[],
        type=_parse_tag,
        metavar="KEY=VALUE",
        help="tag the version (repeatable)",
    )
    register.add_argument("--metrics", metavar="FILE", help="JSON file of evaluation metrics {name: number}")
    register.add_argument("--feature-names", metavar="A,B,...", help="feature names when the model has none")
    register.add_argument(
        "--source-commit", help="source commit (default: git HEAD of the current directory)"
    )
    register.set_defaults(func=cmd_register)

    models = sub.add_parser("models", help="list registered models")
    models.set_defaults(func=cmd_models)

    versions = sub.add_parser("versions", help="list versions of a model, newest first")
    versions.add_argument("name")
    versions.set_defaults(func=cmd_versions)

    show = sub.add_parser("show", help="show one version")
    show.add_argument("name")
    show.add_argument("version", type=_positive_int)
    show.set_defaults(func=cmd_show)

    archive = sub.add_parser("archive", help="mark a version archived (kept, not deleted)")
    archive.add_argument("name")
    archive.add_argument("version", type=_positive_int)
    archive.set_defaults(func=cmd_archive)

    for extend in _EXTENSIONS:
        extend(sub)
    return parser


# Other command groups (rollouts) register themselves here, keeping this module small.
_EXTENSIONS: list[Callable[[Any], None]] = []


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


if __name__ == "__main__":
    sys.exit(main())
