"""Reports: what an experiment hands over, written as JSON, Markdown, figures and data.

An experiment returns a :class:`Report`; :func:`write_report` renders it and
knows nothing about which paper the numbers came from:

* ``report.json``: metrics, verdicts, warnings, timing per stage, the
  configuration and the ``provenance`` (command line, package versions,
  device and platform, every random stream drawn, git revision, schema
  version);
* ``report.md``: the same for a reader, with the figures inline;
* ``<figure>.png`` and ``<figure>.pdf`` for every figure;
* ``<table>.csv``: every per-time and per-width table, tidy (one row per
  observation), for re-plotting;
* ``data.npz``: per-member arrays (outputs, losses, limit moments).

The directory is written under a temporary name and renamed into place, so a
failure (a full disk) leaves neither a partial report nor a damaged old one.
Figures are ``matplotlib.figure.Figure`` objects built without pyplot; they
display inline in Jupyter as they are.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from jaxlimit.display import format_value
from jaxlimit.errors import InputError

_GLOSSARY_FILE = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
GLOSSARY_URL = _GLOSSARY_FILE.as_uri() if _GLOSSARY_FILE.exists() else "docs/metrics.md"
"""Where report.md links its glossary of metrics: docs/metrics.md of this source tree (the
repository's docs/metrics.md when jaxlimit is installed without its docs)."""
SCHEMA_VERSION = 2
"""Version of the ``report.json`` layout (2: provenance, tables and data files)."""


@dataclasses.dataclass
class Report:
    """Everything an experiment has to say.

    Attributes:
        experiment: its name, e.g. ``"xavier"``.
        config: the resolved configuration (JSON-serialisable).
        metrics: named numbers (and small lists of numbers).
        verdict: named verdicts, each ``"consistent"`` or ``"inconsistent"``.
        timing: seconds spent per stage.
        figures: file stem → figure; written as ``<stem>.png`` and ``<stem>.pdf``.
        tables: file stem → columns (name → list of equal length); ``<stem>.csv``.
        arrays: name → array, written together to ``data.npz``.
        summary: Markdown lines for the top of ``report.md``.
        warnings: things a reader must not miss (singular kernel, divergence).
        provenance: filled by :func:`jaxlimit.experiments.run`.
    """

    experiment: str
    config: dict
    metrics: dict
    verdict: dict = dataclasses.field(default_factory=dict)
    timing: dict = dataclasses.field(default_factory=dict)
    figures: dict = dataclasses.field(default_factory=dict)
    tables: dict = dataclasses.field(default_factory=dict)
    arrays: dict = dataclasses.field(default_factory=dict)
    summary: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    provenance: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        """The ``report.json`` content: figures and tables by file name, NaN as null."""
        return to_jsonable({
            "schema_version": SCHEMA_VERSION,
            "experiment": self.experiment,
            "verdict": self.verdict,
            "metrics": self.metrics,
            "warnings": self.warnings,
            "timing": self.timing,
            "config": self.config,
            "provenance": self.provenance,
            "figures": [f"{name}.{ext}" for name in self.figures for ext in ("png", "pdf")],
            "tables": [f"{name}.csv" for name in self.tables],
            "data": ["data.npz"] if self.arrays else [],
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })

    def _repr_markdown_(self) -> str:  # Jupyter front ends without HTML: the report as its Markdown
        return to_markdown(self, figures=False)

    def _repr_html_(self) -> str:  # Jupyter: summary, verdicts, metrics and the figures inline
        return to_html(self)

    def __repr__(self) -> str:
        verdicts = ", ".join(f"{k}: {v}" for k, v in self.verdict.items())
        return (f"Report({self.experiment!r}; {verdicts or 'no verdict'}; {len(self.metrics)} metrics, "
                f"{len(self.figures)} figures, {len(self.tables)} tables, {len(self.warnings)} warnings)")

    def to_dataframe(self):
        """The metrics as a pandas DataFrame (metric, value, description from docs/metrics.md; needs pandas)."""
        from jaxlimit.display import dataframe

        names = list(self.metrics)
        return dataframe({"metric": names, "value": [_cell(self.metrics[k]) for k in names],
                          "meaning": [metric_meaning(k) for k in names]}, "metrics")

    def dataframes(self) -> dict:
        """Every per-time / per-width table (``tables``, the CSV files) as a pandas DataFrame, by name
        (needs pandas)."""
        from jaxlimit.display import dataframe

        return {name: dataframe({k: list(to_jsonable(v)) for k, v in columns.items()}, "tables")
                for name, columns in self.tables.items()}


def to_jsonable(value: Any) -> Any:
    """Convert numpy/JAX scalars and arrays to plain JSON; non-finite floats to None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if hasattr(value, "shape") and getattr(value, "shape", None) != ():
        return to_jsonable(np.asarray(value).tolist())
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f if math.isfinite(f) else None


def _cell(value: Any) -> Any:
    value = to_jsonable(value)
    return value if isinstance(value, (int, float, str, bool)) or value is None else format_value(value)


def metric_meaning(name: str) -> str:
    """The glossary's line for a report metric (docs/metrics.md)."""
    from jaxlimit.glossary import meaning

    return meaning(name)


def to_html(report: Report, *, figures: bool = True) -> str:
    """The report for a notebook: summary, warnings, verdicts, metrics (with their meaning) and the
    figures inline; the configuration folded away."""
    from jaxlimit.display import escape, figure_png, html_table, markdown_inline_html

    data = report.to_json()
    parts = [f"<div class=\"jaxlimit-report\"><h3>jaxlimit report: {escape(report.experiment)}</h3>"]
    summary = [line for line in report.summary if line.strip()]
    if summary:
        parts.append("".join(f"<p>{markdown_inline_html(line.lstrip('- '))}</p>" for line in summary))
    if report.warnings:
        parts.append("<p><b>Warnings</b></p><ul>" + "".join(f"<li>{escape(w)}</li>" for w in report.warnings)
                     + "</ul>")
    if data["verdict"]:
        parts.append(html_table(["verdict", ""], data["verdict"].items()))
    parts.append(html_table(["metric", "value", "meaning"],
                            [(f"<code>{escape(k)}</code>", v, metric_meaning(k)) for k, v in data["metrics"].items()],
                            caption=f'Metrics (glossary: <a href="{GLOSSARY_URL}">docs/metrics.md</a>)',
                            raw_columns=(0,)))
    if figures:
        parts += [figure_png(fig) for fig in report.figures.values()]
    parts.append("<details><summary>configuration</summary><pre>" + escape(json.dumps(data["config"], indent=2))
                 + "</pre></details></div>")
    return "".join(parts)


def to_markdown(report: Report, *, figures: bool = True) -> str:
    data = report.to_json()
    lines = [f"# jaxlimit report: {report.experiment}", ""]
    lines += report.summary + ([""] if report.summary else [])
    if report.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in report.warnings] + [""]
    if data["verdict"]:
        lines += ["## Verdict", ""] + [f"- **{k}**: {v}" for k, v in data["verdict"].items()] + [""]
    lines += ["## Metrics", "", f"What each metric measures: [docs/metrics.md]({GLOSSARY_URL}).", "",
              "| metric | value |", "| --- | --- |"]
    lines += [f"| `{k}` | {format_value(v)} |" for k, v in data["metrics"].items()]
    if figures and report.figures:
        lines += ["", "## Figures", ""] + [f"![{name}]({name}.png)" for name in report.figures]
    if report.tables or report.arrays:
        lines += ["", "## Data", ""] + [f"- `{t}`" for t in data["tables"] + data["data"]]
    lines += ["", "## Configuration", "", "```json", json.dumps(data["config"], indent=2), "```"]
    if data["timing"]:
        lines += ["", "## Timing (seconds)", ""]
        lines += [f"- {k}: {format_value(v)}" for k, v in data["timing"].items()]
    prov = data.get("provenance") or {}
    if prov:
        versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items())
        lines += ["", "## Provenance", "", f"- command: `{' '.join(prov.get('command_line') or ['(library)'])}`",
                  f"- versions: {versions}", f"- device: {prov.get('device', 'n/a')}",
                  f"- git revision: {prov.get('git_revision') or 'n/a'}"]
    return "\n".join(lines) + "\n"


def _write_table(path: Path, columns: dict) -> None:
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    if any(len(v) != n for v in columns.values()):
        raise ValueError(f"table {path.name}: columns of unequal length")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for i in range(n):
            writer.writerow([_csv_cell(columns[c][i]) for c in names])


def _csv_cell(value: Any) -> Any:
    value = to_jsonable(value)
    return "" if value is None else value


def check_output_dir(out: str | Path) -> Path:
    """Refuse an output directory that would overwrite something that is not a report."""
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise InputError(f"output {str(out)!r} is a file, not a directory")
        entries = [p for p in path.iterdir()]
        if entries and not (path / "report.json").exists():
            raise InputError(f"output directory {str(out)!r} holds files that are not a jaxlimit report; "
                             "choose a new or empty directory")
    return path


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write the report files (see the module docstring) into ``out_dir``, atomically."""
    out = check_output_dir(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, fig in report.figures.items():
            fig.savefig(tmp / f"{name}.png", dpi=130)
            fig.savefig(tmp / f"{name}.pdf")
        for name, columns in report.tables.items():
            _write_table(tmp / f"{name}.csv", columns)
        if report.arrays:
            with open(tmp / "data.npz", "wb") as f:
                np.savez_compressed(f, **{k: np.asarray(v) for k, v in report.arrays.items()})
        (tmp / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
        (tmp / "report.md").write_text(to_markdown(report))
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            old.rename(out)
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise InputError(f"cannot write the report to {str(out_dir)!r}: {reason}") from None
    shutil.rmtree(old, ignore_errors=True)
    return out


# Provenance ------------------------------------------------------------------------

_PACKAGES = ("jaxlimit", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy", "scipy", "matplotlib")


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def provenance(*, streams: list, command_line: list[str] | None = None) -> dict:
    """Where a report came from: enough to tell two reports apart months later."""
    from importlib.metadata import PackageNotFoundError, version

    import jax

    from jaxlimit import __version__

    versions = {"jaxlimit": __version__}  # the source's own, not a stale installed record
    for name in _PACKAGES[1:]:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    devices = jax.devices()
    return {
        "schema_version": SCHEMA_VERSION,
        "command_line": command_line,
        "versions": versions,
        "device": f"{len(devices)} × {devices[0].device_kind} ({jax.default_backend()})",
        "processes": jax.process_count(),
        "platform": {"system": platform.platform(), "python": sys.version.split()[0],
                     "machine": platform.machine(), "cpu_count": os.cpu_count(),
                     "x64": bool(jax.config.jax_enable_x64)},
        "random_streams": streams,
        "git_revision": _git_revision(),
    }


__all__ = ["Report", "SCHEMA_VERSION", "check_output_dir", "provenance", "to_jsonable", "to_markdown",
           "write_report"]
