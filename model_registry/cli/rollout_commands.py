"""The rollout commands: rollout, promote, rollback, status, prune, history."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from model_registry.cli.arguments import add_paging, duration, percent, positive_int, steps
from model_registry.cli.output import alias_text, say, table
from model_registry.core.errors import RegistryError
from model_registry.core.settings import Settings

if TYPE_CHECKING:
    from model_registry.rollout import Move, Rollouts


def _rollouts() -> Rollouts:
    from model_registry.core import aws
    from model_registry.registry.service import RegistryService
    from model_registry.rollout import Rollouts

    settings = Settings.from_env()
    return Rollouts(
        RegistryService.from_settings(settings),
        aws.client_for("lambda", settings),
        settings.platform_name,
        aws.client_for("cloudwatch", settings),
        say=say,
    )


def _print_plan(moves: list[Move], as_json: bool) -> int:
    """What ``--dry-run`` prints: each move the command would make, nothing changed."""
    if as_json:
        print(json.dumps([_move_dict(move) for move in moves], indent=2))
        return 0
    for move in moves:
        for line in move.describe():
            say(line)
    say("dry run: nothing was changed")
    return 0


def _move_dict(move: Move) -> dict[str, Any]:
    return {
        "model": move.model_name,
        "from": move.before.as_record(),
        "to": move.after.as_record(),
        "provision": move.to_provision,
        "release": move.to_release,
        "peak_provisioned": move.peak,
        "reserved": move.reserved,
    }


def cmd_rollout(args: argparse.Namespace) -> int:
    from model_registry.rollout import Gate

    rollouts = _rollouts()
    steps = args.steps or [args.canary if args.canary is not None else 100]
    gate = Gate(args.max_error_rate / 100, args.max_p99_ms, args.min_requests)
    if args.dry_run:
        if args.steps and not args.json:
            say(f"{args.name}: {len(steps)} steps of {args.interval:g}s; gate: {gate.describe()}")
        return _print_plan(rollouts.plan_rollout(args.name, args.version, steps), args.json)
    if args.steps:
        try:
            result = rollouts.progressive(args.name, args.version, args.steps, args.interval, gate, say=say)
        except KeyboardInterrupt:
            return 130
        if result.outcome != "promoted":
            print(
                f"modelctl: rollout of {args.name} v{args.version} rolled back: {result.reason}",
                file=sys.stderr,
            )
            return 3
        return 0
    after = rollouts.start_canary(args.name, args.version, steps[0]).after
    if after.canary_version:
        say(
            f"{args.name}: model v{args.version} on Lambda version {after.canary_version} gets "
            f"{after.canary_weight:.0%} of traffic; stable stays on Lambda version {after.stable_version}"
        )
    else:
        say(f"{args.name}: all traffic on Lambda version {after.stable_version} (model v{args.version})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    rollouts = _rollouts()
    if args.dry_run:
        return _print_plan([rollouts.plan_promote(args.name)], args.json)
    event = rollouts.promote(args.name)
    say(f"{args.name}: promoted Lambda version {event.after.stable_version} to all traffic")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    rollouts = _rollouts()
    if args.dry_run:
        return _print_plan([rollouts.plan_rollback(args.name)], args.json)
    event = rollouts.rollback(args.name, reason=args.reason)
    say(f"{args.name}: all traffic back on Lambda version {event.after.stable_version}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rollouts = _rollouts()
    token = None
    if args.name:
        names = [args.name]
    else:  # a page of models: each costs a few Lambda and CloudWatch reads
        page = rollouts.service.store.page_models(args.limit, args.next_token)
        names, token = [m.model_name for m in page.models], page.next_token
    reports = []
    for name in names:
        try:
            reports.append(rollouts.status(name).as_dict())
        except RegistryError as exc:
            reports.append({"model": name, "versions": [], "error": exc.message})
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
        return 0
    rows = [row for report in reports for row in report["versions"]]
    rows += [
        {"model": r["model"], "role": "-", "lambda_version": r["error"]} for r in reports if "error" in r
    ]
    print(table(rows, ["model", "role", "lambda_version", "model_version", "weight", "requests", "errors"]))
    if token:
        print(f"more: modelctl status --next-token {token}", file=sys.stderr)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    deleted = _rollouts().prune(args.name, keep=args.keep, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    if args.json:
        print(json.dumps({"model": args.name, "dry_run": args.dry_run, "versions": deleted}))
    else:
        say(
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
            "from": alias_text(e.get("from")),
            "to": alias_text(e.get("to")),
            "outcome": e.get("outcome", ""),
            "note": e.get("reason", e.get("model_version", "")),
        }
        for e in events
    ]
    print(table(rows, ["seq", "at", "by", "action", "from", "to", "outcome", "note"]))
    return 0


def add_rollout_commands(sub: Any) -> None:
    """Add the rollout commands to ``modelctl``'s subparsers."""
    rollout = sub.add_parser(
        "rollout",
        help="send traffic to a model version (canary or progressive)",
        description="Pin VERSION on the model's function, publish a Lambda version and move traffic to it: "
        "all at once, as a --canary share, or through --steps with automatic rollback on a breach.",
    )
    rollout.add_argument("name")
    rollout.add_argument("version", type=positive_int)
    mode = rollout.add_mutually_exclusive_group()
    mode.add_argument("--canary", type=percent, metavar="PCT", help="send PCT%% to the new version")
    mode.add_argument("--steps", type=steps, metavar="P1,P2,...", help="progressive steps, e.g. 10,50,100")
    rollout.add_argument("--interval", type=duration, default=60.0, help="time per step (default 60s)")
    rollout.add_argument(
        "--max-error-rate",
        type=percent,
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
    _add_dry_run(rollout, "print the moves (alias weights, provisioned concurrency) and change nothing")
    rollout.set_defaults(func=cmd_rollout)

    promote = sub.add_parser("promote", help="move all traffic to the canary")
    promote.add_argument("name")
    _add_dry_run(promote, "print the move and change nothing")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", help="drop the canary, or return to the previous stable version")
    rollback.add_argument("name")
    rollback.add_argument("--reason", default="requested", help="recorded in the history")
    _add_dry_run(rollback, "print the move and change nothing")
    rollback.set_defaults(func=cmd_rollback)

    status = sub.add_parser("status", help="live versions, weights and recent traffic per model")
    status.add_argument("name", nargs="?", help="one model (default: a page of models by name)")
    add_paging(status, default_limit=50)
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


def _add_dry_run(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--dry-run", action="store_true", help=text)
