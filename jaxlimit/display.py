"""Plain-text formatting shared by reports and by the Jupyter display of results."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable


def in_notebook() -> bool:
    """Whether this is a Jupyter kernel (an IPython shell with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return shell is not None and hasattr(shell, "kernel")


def show_progress(stream=None) -> bool:
    """The default of ``progress``: shown in a terminal or a notebook, hidden when the ``CI``
    environment variable is set (to anything but 0/false) or standard error is not a terminal."""
    ci = os.environ.get("CI", "").strip().lower()
    if ci not in ("", "0", "false", "no"):
        return False
    if in_notebook():
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


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


__all__ = ["format_value", "in_notebook", "markdown_table", "show_progress"]
