"""Formatting shared by reports and by the Jupyter display of results: plain text and Markdown,
HTML tables (:func:`html_table`, every ``_repr_html_`` uses it), inline figures, short reprs,
DataFrames when pandas is installed, and whether to show progress."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable


def in_notebook() -> bool:
    """Whether this is a Jupyter kernel (an IPython shell with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return shell is not None and hasattr(shell, "kernel")


def progress_bar_class():
    """tqdm's notebook widget in a notebook with ipywidgets, else its text bar (on standard error),
    without tqdm.auto's warning when ipywidgets is missing."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401

            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:
            pass
    from tqdm.std import tqdm

    return tqdm


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




# HTML (Jupyter) ---------------------------------------------------------------------

def escape(value: Any) -> str:
    """HTML-escaped text of :func:`format_value`."""
    import html

    return html.escape(value if isinstance(value, str) else format_value(value), quote=True)


def html_table(header: Iterable[str] | None, rows: Iterable[Iterable[Any]], *, caption: str | None = None,
               raw_columns: Iterable[int] = ()) -> str:
    """An HTML table (cells through :func:`format_value`, escaped; columns in ``raw_columns`` are
    inserted as given HTML). ``header`` None: no header row. Shared by every ``_repr_html_``."""
    raw = set(raw_columns)
    out = ["<table class=\"jaxlimit\">"]
    if caption:
        out.append(f"<caption style=\"text-align:left\">{caption}</caption>")
    if header is not None:
        out.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = [str(c) if i in raw else escape(c) for i, c in enumerate(row)]
        out.append("<tr>" + "".join(f"<td style=\"text-align:left\">{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def markdown_inline_html(text: str) -> str:
    """One line of the reports' Markdown (``**bold**``, ``*italic*``, `` `code` ``, links) as HTML."""
    import re

    out = escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"(?<![\w*])\*([^*]+)\*(?![\w*])", r"<i>\1</i>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


def figure_png(fig, dpi: int = 100) -> str:
    """A matplotlib figure as an inline ``<img>`` (base64 PNG), for notebooks."""
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%"/>'


def dataframe(columns: dict, what: str = "tables"):
    """A pandas DataFrame of equal-length ``columns``, or an InputError saying pandas is missing."""
    try:
        import pandas
    except ImportError:
        from jaxlimit.errors import InputError

        raise InputError(f"{what} as DataFrames need pandas: pip install pandas (or jaxlimit[notebook])") from None
    return pandas.DataFrame(columns)


# Short descriptions -----------------------------------------------------------------------

def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"[{len(value)} values]"
        return "(" + ", ".join(_compact(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    return str(value)


def described_repr(obj: Any) -> str:
    """``Name(key=value, ...)`` on one line from ``obj.describe()`` (a model's or trainer's settings),
    instead of the whole pytree (activation functions, per-leaf multipliers)."""
    try:
        described = dict(obj.describe())
    except Exception:  # noqa: BLE001 - a repr must never fail
        return object.__repr__(obj)
    described.pop("model", None)
    return f"{type(obj).__name__}(" + ", ".join(f"{k}={_compact(v)}" for k, v in described.items()) + ")"


def _times_text(times) -> str:
    times = [float(t) for t in times]
    if len(times) > 6:
        return f"{len(times)} times from {times[0]:g} to {times[-1]:g}"
    return "t = " + ", ".join(f"{t:g}" for t in times)


def result_repr(result) -> str:
    """One line: members, divergence, times, points, model and method."""
    config = result.config or {}
    model = config.get("model", {})
    trainer = config.get("trainer", {})
    parts = [f"{result.n_members} members", f"{result.n_diverged} diverged", _times_text(result.times),
             f"{result.outputs.shape[-1]} points ({result.n_train} training)"]
    if model:
        parts.append("model " + ", ".join(f"{k} {_compact(v)}" for k, v in model.items()
                                          if k in ("model", "widths", "width", "dim", "activation", "gamma",
                                                   "name")))
    if trainer:
        parts.append(f"trainer {trainer.get('method')} α = {_compact(trainer.get('alpha'))}")
    return "EnsembleResult(" + "; ".join(parts) + ")"


def result_html(result) -> str:
    """A result in a notebook: what was run, then the training loss at each saved time."""
    import numpy as np

    config = result.config or {}
    keep = ~np.asarray(result.diverged)
    loss = np.asarray(result.loss, np.float64)[keep]
    n = len(loss)
    mean = loss.mean(0) if n else [float("nan")] * len(result.times)
    se = loss.std(0, ddof=1) / np.sqrt(n) if n > 1 else [float("nan")] * len(result.times)
    head = (f"<b>EnsembleResult</b>: {result.n_members} members ({result.n_diverged} diverged), "
            f"{len(result.times)} saved times, {result.outputs.shape[-1]} points ({result.n_train} training)")
    warning = ""
    if config.get("divergence"):
        warning = f"<p style=\"color:#b00\">{escape(config['divergence'])}</p>"
    about = html_table(None, [(k, format_value(config[k])) for k in
                              ("model", "trainer", "dataset", "program", "lanes", "dtype") if k in config])
    per_time = html_table(["t", "steps", "mean training loss", "its standard error"],
                          [(float(t), int(k), float(m), float(e)) for t, k, m, e in
                           zip(result.times, result.steps, mean, se)])
    return f"<div><p>{head}</p>{warning}{about}{per_time}</div>"


def limit_html(limit) -> str:
    """A limit in a notebook: its name, what it is (the docstring's first sentence), what it assumes."""
    doc = (type(limit).__doc__ or "").strip().split("\n\n")[0]
    doc = " ".join(doc.split())
    rows = []
    for name in ("kernel_method", "learning_rate", "kernel_error", "fluctuation_scale"):
        value = getattr(limit, name, None)
        if value is not None and not callable(value):
            rows.append((name, value))
    if hasattr(limit, "has_paths"):
        rows.append(("per-network paths (pathwise)", "yes" if limit.has_paths else "no"))
    for part, settings in (getattr(limit, "assumptions", None) or {}).items():
        if settings:
            rows.append((f"assumes ({part})", ", ".join(f"{k} {format_value(v)}" for k, v in settings.items())))
    table = html_table(None, rows) if rows else ""
    return f"<div><p><b>{escape(type(limit).__name__)}</b>: {markdown_inline_html(doc)}</p>{table}</div>"


__all__ = ["dataframe", "described_repr", "escape", "figure_png", "format_value", "html_table", "in_notebook",
           "limit_html", "markdown_inline_html", "markdown_table", "progress_bar_class", "result_html", "result_repr",
           "show_progress"]
