"""modelctl's argument parsing, without AWS: types, defaults, refusals and --help."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from model_registry.cli import build_parser, load_env_file
from model_registry.cli.arguments import duration, parse_tag, percent, positive_int, steps


def test_argument_types() -> None:
    assert parse_tag("team=ds") == ("team", "ds") and parse_tag("empty=") == ("empty", "")
    assert positive_int("3") == 3
    assert percent("1.5%") == 1.5 and percent(" 20 ") == 20
    assert steps("10, 50,100") == [10, 50, 100]
    assert [duration(t) for t in ("90", "60s", "2m", "1h")] == [90, 60, 120, 3600]


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_tag, "team", "key=value"),
        (parse_tag, "=ds", "key=value"),
        (positive_int, "0", "start at 1"),
        (positive_int, "v2", "expected a version number"),
        (percent, "101", "between 0 and 100"),
        (percent, "ten", "expected a percentage"),
        (duration, "5x", "expected a duration"),
        (duration, "", "expected a duration"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(parse, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(text)


def test_the_parser_reads_each_command() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["rollout", "iris", "2", "--steps", "10,50,100", "--interval", "2m", "--dry-run"]
    )
    assert (args.name, args.version, args.steps, args.interval, args.dry_run) == (
        "iris",
        2,
        [10, 50, 100],
        120,
        True,
    )
    assert (args.max_error_rate, args.min_requests, args.canary) == (1.0, 10, None)
    args = parser.parse_args(["show", "iris", "3", "--json"])  # --json after the command works too
    assert (args.command, args.version, args.json) == ("show", 3, True)
    args = parser.parse_args(["register", "iris", "m.skops", "--tag", "a=1", "--tag", "b=2"])
    assert args.tag == [("a", "1"), ("b", "2")] and args.framework is None
    assert parser.parse_args(["rollback", "iris"]).reason == "requested"


def test_canary_and_steps_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["rollout", "iris", "2", "--canary", "10", "--steps", "10,100"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


COMMANDS = ["register", "optimize", "models", "versions", "show", "archive"]
COMMANDS += ["rollout", "promote", "rollback", "status", "prune", "history"]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    overview = capsys.readouterr().out
    for name in COMMANDS:
        assert f"    {name} " in overview, f"{name} missing from modelctl --help"
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            parser.parse_args([name, "--help"])
        assert f"usage: modelctl {name}" in capsys.readouterr().out


def test_the_env_file_reader(tmp_path: Path) -> None:
    env = tmp_path / "platform.env"
    env.write_text("# written by make up\nexport A=1\nB='two words'\n\nC=\"x=y\"\n")
    assert load_env_file(env) == {"A": "1", "B": "two words", "C": "x=y"}
