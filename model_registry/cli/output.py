"""What ``modelctl`` prints: tables and alias states."""

from __future__ import annotations

from typing import Any


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as aligned columns under upper-case headers; ``(none)`` when empty."""
    if not rows:
        return "(none)"
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def alias_text(state: dict[str, Any] | None) -> str:
    """A journaled alias state as ``v3`` or ``v3 + v4@20%``."""
    if not state:
        return ""
    text = f"v{state['stable']}"
    if state.get("canary"):
        text += f" + v{state['canary']}@{float(state['canary_weight']):.0%}"
    return text


def say(message: str) -> None:
    """Progress output, flushed at once (long rollouts print as they go)."""
    print(message, flush=True)
