"""Plain-text formatting shared by reports and by the Jupyter display of results."""

from __future__ import annotations

from typing import Any, Iterable


def format_value(value: Any) -> str:
    """A number to 4 significant digits, a long list by its length, a dict as "key value" pairs, None as n/a."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"[{len(value)} values]"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items())
    if value is None:
        return "n/a"
    return str(value)


def markdown_table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A Markdown table; cells go through :func:`format_value`."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(format_value(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


__all__ = ["format_value", "markdown_table"]
