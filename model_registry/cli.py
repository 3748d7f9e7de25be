"""``modelctl``: register and inspect model versions (and, with rollouts, move traffic)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_registry.core.errors import InvalidInput, RegistryError
from model_registry.core.settings import Settings
from model_registry.serving.loaders import REGISTRABLE_FRAMEWORKS

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
    register.add_argument(
        "--framework", choices=REGISTRABLE_FRAMEWORKS, help="expected framework (default: detected)"
    )
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
    _add_optimize_arguments(register)
    register.set_defaults(func=cmd_register)

    optimize = sub.add_parser(
        "optimize",
        help="compile a registered scikit-learn version to ONNX (validated) for faster serving",
        description=(
            "Compile version VERSION of NAME to ONNX, check that it reproduces the native model on "
            "--validation-data (same labels, probabilities within 1e-5; regression within 1e-5 relative) "
            "and attach it to the version. Functions with onnxruntime in their layer then serve it; "
            "the native artifact stays as the fallback."
        ),
    )
    optimize.add_argument("name")
    optimize.add_argument("version", type=_positive_int)
    _add_optimize_arguments(optimize, flag=False)
    optimize.set_defaults(func=cmd_optimize)

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

    _add_rollout_commands(sub)
    # `modelctl show iris 3 --json` works as well as `modelctl --json show iris 3`
    for command in sub.choices.values():
        command.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of a table"
        )
    return parser


# --------------------------------------------------------------------------- rollouts


def _percent(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage like 10 or 1.5%, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"percentages are between 0 and 100, got {value}")
    return value


def _steps(text: str) -> list[float]:
    return [_percent(part) for part in text.split(",") if part.strip()]


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"expected a duration like 60s or 2m, got {text!r}") from None


def _rollouts() -> Any:
    from model_registry.core import aws
    from model_registry.registry.service import RegistryService
    from model_registry.rollout import Rollouts

    settings = Settings.from_env()
    return Rollouts(
        RegistryService.from_settings(settings),
        aws.client_for("lambda", settings),
        settings.platform_name,
        aws.client_for("cloudwatch", settings),
        say=_say,
    )


def _say(message: str) -> None:
    print(message, flush=True)


def cmd_rollout(args: argparse.Namespace) -> int:
    from model_registry.rollout import Gate

    rollouts = _rollouts()
    if args.steps:
        gate = Gate(args.max_error_rate / 100, args.max_p99_ms, args.min_requests)
        try:
            result = rollouts.progressive(args.name, args.version, args.steps, args.interval, gate, say=_say)
        except KeyboardInterrupt:
            return 130
        if result["outcome"] != "promoted":
            print(
                f"modelctl: rollout of {args.name} v{args.version} rolled back: {result['reason']}",
                file=sys.stderr,
            )
            return 3
        return 0
    event = rollouts.start_canary(args.name, args.version, args.canary if args.canary is not None else 100)
    to = event["to"]
    if to["canary"]:
        _say(
            f"{args.name}: model v{args.version} on Lambda version {to['canary']} gets "
            f"{to['canary_weight']:.0%} of traffic; stable stays on Lambda version {to['stable']}"
        )
    else:
        _say(f"{args.name}: all traffic on Lambda version {to['stable']} (model v{args.version})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    event = _rollouts().promote(args.name)
    _say(f"{args.name}: promoted Lambda version {event['to']['stable']} to all traffic")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    event = _rollouts().rollback(args.name, reason=args.reason)
    _say(f"{args.name}: all traffic back on Lambda version {event['to']['stable']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rollouts = _rollouts()
    names = [args.name] if args.name else [m.model_name for m in rollouts.service.store.list_models()]
    reports = []
    for name in names:
        try:
            reports.append(rollouts.status(name))
        except RegistryError as exc:
            reports.append({"model": name, "versions": [], "error": exc.message})
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
        return 0
    rows = [row for report in reports for row in report["versions"]]
    rows += [
        {"model": r["model"], "role": "-", "lambda_version": r["error"]} for r in reports if "error" in r
    ]
    print(_table(rows, ["model", "role", "lambda_version", "model_version", "weight", "requests", "errors"]))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    deleted = _rollouts().prune(args.name, keep=args.keep, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    if args.json:
        print(json.dumps({"model": args.name, "dry_run": args.dry_run, "versions": deleted}))
    else:
        _say(
            f"{args.name}: {verb} Lambda versions {', '.join(deleted)}"
            if deleted
            else f"{args.name}: nothing to prune"
        )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    events = _rollouts().journal.events(args.name, limit=args.limit)
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    rows = [
        {
            "seq": e["sequence"],
            "at": e.get("at", e["recorded_at"]),
            "by": e.get("by", ""),
            "action": e["action"],
            "from": _alias_text(e.get("from")),
            "to": _alias_text(e.get("to")),
            "outcome": e.get("outcome", ""),
            "note": e.get("reason", e.get("model_version", "")),
        }
        for e in events
    ]
    print(_table(rows, ["seq", "at", "by", "action", "from", "to", "outcome", "note"]))
    return 0


def _alias_text(state: dict[str, Any] | None) -> str:
    if not state:
        return ""
    text = f"v{state['stable']}"
    if state.get("canary"):
        text += f" + v{state['canary']}@{float(state['canary_weight']):.0%}"
    return text


def _add_rollout_commands(sub: Any) -> None:
    rollout = sub.add_parser(
        "rollout",
        help="send traffic to a model version (canary or progressive)",
        description="Pin VERSION on the model's function, publish a Lambda version and move traffic to it: "
        "all at once, as a --canary share, or through --steps with automatic rollback on a breach.",
    )
    rollout.add_argument("name")
    rollout.add_argument("version", type=_positive_int)
    mode = rollout.add_mutually_exclusive_group()
    mode.add_argument("--canary", type=_percent, metavar="PCT", help="send PCT%% to the new version")
    mode.add_argument("--steps", type=_steps, metavar="P1,P2,...", help="progressive steps, e.g. 10,50,100")
    rollout.add_argument("--interval", type=_duration, default=60.0, help="time per step (default 60s)")
    rollout.add_argument(
        "--max-error-rate",
        type=_percent,
        default=1.0,
        metavar="PCT",
        help="roll back when the canary's error rate exceeds this (default 1%%)",
    )
    rollout.add_argument(
        "--max-p99-ms", type=float, help="roll back when the canary's p99 duration exceeds this"
    )
    rollout.add_argument(
        "--min-requests",
        type=int,
        default=10,
        help="requests needed before a step can be judged (default 10)",
    )
    rollout.set_defaults(func=cmd_rollout)

    promote = sub.add_parser("promote", help="move all traffic to the canary")
    promote.add_argument("name")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="drop the canary, or return to the previous stable version")
    rollback.add_argument("name")
    rollback.add_argument("--reason", default="requested", help="recorded in the history")
    rollback.set_defaults(func=cmd_rollback)

    status = sub.add_parser("status", help="live versions, weights and recent traffic per model")
    status.add_argument("name", nargs="?")
    status.set_defaults(func=cmd_status)

    prune = sub.add_parser(
        "prune",
        help="delete published Lambda versions that nothing needs any more",
        description="Delete the model's published Lambda versions except those the live alias routes to, "
        "the one a rollback would return to, those with provisioned concurrency and the --keep newest "
        "(promote, rollback and full rollouts prune by themselves). Needs lambda:DeleteFunction.",
    )
    prune.add_argument("name")
    prune.add_argument("--keep", type=int, default=3, help="newest versions kept besides those (default 3)")
    prune.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    prune.set_defaults(func=cmd_prune)

    history = sub.add_parser("history", help="rollout events of a model, newest first")
    history.add_argument("name")
    history.add_argument("--limit", type=int, default=50)
    history.set_defaults(func=cmd_history)


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
