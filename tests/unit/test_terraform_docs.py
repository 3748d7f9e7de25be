"""The modules' READMEs list exactly the variables and outputs their .tf files declare."""

from __future__ import annotations

from tooling.terraform_docs import module_dirs, render, updated


def test_every_module_readme_is_current() -> None:
    stale = [
        str(module)
        for module in module_dirs()
        if updated((module / "README.md").read_text(), render(module)) != (module / "README.md").read_text()
    ]
    assert not stale, f"run `make docs`: stale tables in {stale}"


def test_a_new_variable_shows_in_the_table(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "variables.tf").write_text(
        'variable "size" {\n  description = "How big."\n  type = number\n  default = 3\n}\n'
        'variable "name" {\n  description = "What | it is."\n  type = string\n}\n'
    )
    table = render(tmp_path)
    assert "| `size` | How big. | `number` | `3` | no |" in table
    assert "| `name` | What \\| it is. | `string` | n/a | yes |" in table
    assert updated("# m\n\nkept\n", table).startswith("# m\n\nkept\n\n<!-- BEGIN_TF_DOCS -->")
