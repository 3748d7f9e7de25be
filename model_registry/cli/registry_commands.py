"""The registry commands: register, optimize, models, versions, show, archive."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from model_registry.cli.arguments import add_paging, parse_tag, positive_int
from model_registry.cli.output import table
from model_registry.core.errors import InvalidInput
from model_registry.core.settings import Settings
from model_registry.serving.loaders import REGISTRABLE_FRAMEWORKS


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _service(args: argparse.Namespace) -> Any:
    from model_registry.registry.service import RegistryService

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
    rows = _validation_rows(args) if args.optimize else None
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
        optimize_rows=rows,
    )
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        print(
            f"registered {record.model_name} version {record.version} "
            f"({record.artifact_format}, sha256 {record.sha256[:12]}, {record.size_bytes} bytes)"
        )
        _print_optimized(record)
    return 0


def _validation_rows(args: argparse.Namespace) -> Any:
    from model_registry.registry.optimize import read_validation_data

    if not args.validation_data:
        raise InvalidInput(
            "--optimize needs --validation-data FILE (.npy or .csv rows): the compiled model is "
            "registered only if it reproduces the native one on those rows"
        )
    return read_validation_data(Path(args.validation_data))


def _print_optimized(record: Any) -> None:
    optimized = record.optimized
    if optimized is None:
        return
    print(
        f"optimized: {optimized.artifact_format} validated on {optimized.validation_rows} rows "
        f"(max |diff| {optimized.max_abs_diff:.2g}); one-row predict {optimized.native_batch1_us:.0f} us "
        f"native -> {optimized.optimized_batch1_us:.0f} us ({optimized.speedup:.0f}x); "
        "native artifact kept as fallback"
    )


def cmd_optimize(args: argparse.Namespace) -> int:
    record = _service(args).optimize(args.name, args.version, _validation_rows(args))
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        _print_optimized(record)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    store = _service(args).store
    if args.all:
        models, token = store.list_models(), None
    else:
        page = store.page_models(args.limit, args.next_token)
        models, token = page.models, page.next_token
    rows = [
        {
            "model_name": m.model_name,
            "latest_version": m.latest_version,
            "pool_version": m.serving_version,
            "pool_canary": f"v{m.policy.canary}@{m.policy.canary_weight:.0%}" if m.policy.canary else "",
            "updated_at": m.updated_at,
        }
        for m in models
    ]
    if args.json:
        print(json.dumps({"models": rows, "next_token": token}, indent=2))
        return 0
    print(table(rows, ["model_name", "latest_version", "pool_version", "pool_canary", "updated_at"]))
    if token:
        print(f"more: modelctl models --next-token {token}  (or --all)", file=sys.stderr)
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
        table(
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


def _add_optimize_arguments(parser: argparse.ArgumentParser, flag: bool = True) -> None:
    if flag:
        parser.add_argument(
            "--optimize",
            action="store_true",
            help="also compile to ONNX for onnxruntime; registered only if it matches the native model "
            "on --validation-data, else nothing is registered",
        )
    parser.add_argument(
        "--validation-data",
        metavar="FILE",
        required=not flag,
        help="rows to validate the compiled model on: .npy, or .csv of numbers (optional header line)",
    )


def add_registry_commands(sub: Any) -> None:
    """Add the registry commands to ``modelctl``'s subparsers."""
    register = sub.add_parser(
        "register",
        help="register a new model version",
        description="Upload ARTIFACT and record it as the next version of NAME.",
    )
    register.add_argument("name", help="model name: lower-case letters, digits, dashes")
    register.add_argument(
        "artifact", help="model file: .skops, .joblib (pickle, if allowed), XGBoost .json/.ubj, LightGBM .txt"
    )
    register.add_argument(
        "--framework", choices=REGISTRABLE_FRAMEWORKS, help="expected framework (default: detected)"
    )
    register.add_argument("--description", default="", help="free-text description")
    register.add_argument(
        "--tag",
        action="append",
        default=[],
        type=parse_tag,
        metavar="KEY=VALUE",
        help="tag the version (repeatable)",
    )
    register.add_argument("--metrics", metavar="FILE", help="JSON file of evaluation metrics {name: number}")
    register.add_argument("--feature-names", metavar="A,B,...", help="feature names when the model has none")
    register.add_argument(
        "--source-commit", help="source commit (default: git HEAD of the current directory)"
    )
    _add_optimize_arguments(register)
    register.set_defaults(func=cmd_register)

    optimize = sub.add_parser(
        "optimize",
        help="compile a registered scikit-learn or XGBoost version to ONNX (validated): faster, and poolable",
        description=(
            "Compile version VERSION of NAME to ONNX, check that it reproduces the native model on "
            "--validation-data (same labels, probabilities within 1e-5; regression within 1e-5 relative) "
            "and attach it to the version. Functions with onnxruntime in their layer then serve it; "
            "the native artifact stays as the fallback."
        ),
    )
    optimize.add_argument("name")
    optimize.add_argument("version", type=positive_int)
    _add_optimize_arguments(optimize, flag=False)
    optimize.set_defaults(func=cmd_optimize)

    models = sub.add_parser(
        "models",
        help="list registered models, a page at a time",
        description="Registered models by name, from the registry's catalog index (one query per page, "
        "never a table scan). POOL_VERSION is what the pooled tier serves; a model in terraform's models "
        "map is served by its own function (modelctl status).",
    )
    add_paging(models, default_limit=100)
    models.add_argument("--all", action="store_true", help="every model, page after page")
    models.set_defaults(func=cmd_models)

    versions = sub.add_parser("versions", help="list versions of a model, newest first")
    versions.add_argument("name")
    versions.set_defaults(func=cmd_versions)

    show = sub.add_parser("show", help="show one version")
    show.add_argument("name")
    show.add_argument("version", type=positive_int)
    show.set_defaults(func=cmd_show)

    archive = sub.add_parser("archive", help="mark a version archived (kept, not deleted)")
    archive.add_argument("name")
    archive.add_argument("version", type=positive_int)
    archive.set_defaults(func=cmd_archive)
