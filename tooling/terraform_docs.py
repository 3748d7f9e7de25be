"""Inputs and outputs tables of the Terraform modules' READMEs, generated from ``variables.tf`` and
``outputs.tf`` between terraform-docs' markers (``<!-- BEGIN_TF_DOCS -->`` … ``<!-- END_TF_DOCS -->``).

terraform-docs itself is a Go binary that cannot be installed here; this writes the same kind of
tables with python-hcl2, so ``make docs`` and the pre-commit hook keep the READMEs true, and
``tests/unit/test_terraform_docs.py`` fails when a variable changed without its README.

    python -m tooling.terraform_docs           # rewrite the tables
    python -m tooling.terraform_docs --check   # exit 1 if a README is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import hcl2

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"


def module_dirs(root: Path = REPO_ROOT / "terraform") -> list[Path]:
    """The root module and every module under ``modules/``."""
    return [root, *sorted(p for p in (root / "modules").iterdir() if (p / "variables.tf").exists())]


def _unquote(value: Any) -> str:
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"')
    return text


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _blocks(path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    if not path.exists():
        return []
    with path.open() as handle:
        parsed = hcl2.load(handle)
    return [(_unquote(name), body) for block in parsed.get(kind, []) for name, body in block.items()]


def render(module: Path) -> str:
    """The Markdown between the markers for one module."""
    lines = [
        BEGIN,
        "## Inputs",
        "",
        "| Name | Description | Type | Default | Required |",
        "|---|---|---|---|:---:|",
    ]
    for name, body in _blocks(module / "variables.tf", "variable"):
        required = "default" not in body
        value = body.get("default")
        if isinstance(value, str):
            value = _unquote(value)
        default = "n/a" if required else f"`{_cell(json.dumps(value))}`"
        description = _cell(_unquote(body.get("description", "")))
        type_ = _cell(_unquote(body.get("type", "any")))
        lines.append(f"| `{name}` | {description} | `{type_}` | {default} | {'yes' if required else 'no'} |")
    lines += ["", "## Outputs", "", "| Name | Description |", "|---|---|"]
    for name, body in _blocks(module / "outputs.tf", "output"):
        lines.append(f"| `{name}` | {_cell(_unquote(body.get('description', '')))} |")
    return "\n".join([*lines, END])


def updated(readme_text: str, table: str) -> str:
    """``readme_text`` with the generated part replaced (appended when it has no markers yet)."""
    if BEGIN in readme_text and END in readme_text:
        head, rest = readme_text.split(BEGIN, 1)
        return head + table + rest.split(END, 1)[1]
    return readme_text.rstrip("\n") + "\n\n" + table + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README is stale")
    args = parser.parse_args(argv)
    stale = []
    for module in module_dirs():
        readme = module / "README.md"
        current = readme.read_text() if readme.exists() else f"# {module.name} module\n"
        wanted = updated(current, render(module))
        if wanted != current:
            stale.append(readme)
            if not args.check:
                readme.write_text(wanted)
    for readme in stale:
        print(f"{'stale' if args.check else 'updated'}: {readme.relative_to(REPO_ROOT)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
