"""Reports: what an experiment hands over, written as JSON, Markdown and PNGs.

An experiment returns a :class:`Report`; :func:`write_report` renders it and
knows nothing about which paper the numbers came from. Figures are
``matplotlib.figure.Figure`` objects built without pyplot, so nothing here
touches global plotting state (they display inline in Jupyter as they are).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure


@dataclasses.dataclass
class Report:
    """Everything an experiment has to say.

    Attributes:
        experiment: its name, e.g. ``"xavier"``.
        config: the resolved configuration (JSON-serialisable).
        metrics: named numbers (and small lists of numbers).
        verdict: named verdict strings, e.g. ``{"gaussian_limit": "consistent"}``.
        timing: seconds spent per stage.
        figures: file stem → figure; written as ``<stem>.png``.
        summary: Markdown lines for the top of ``report.md``.
        warnings: things a reader must not miss (singular kernel, divergence).
    """

    experiment: str
    config: dict
    metrics: dict
    verdict: dict = dataclasses.field(default_factory=dict)
    timing: dict = dataclasses.field(default_factory=dict)
    figures: dict[str, Figure] = dataclasses.field(default_factory=dict)
    summary: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        """The ``report.json`` content: figures by file name, NaN as null."""
        return to_jsonable({
            "experiment": self.experiment,
            "config": self.config,
            "metrics": self.metrics,
            "verdict": self.verdict,
            "timing": self.timing,
            "warnings": self.warnings,
            "figures": [f"{name}.png" for name in self.figures],
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })


def to_jsonable(value: Any) -> Any:
    """Convert numpy/JAX scalars and arrays to plain JSON; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if hasattr(value, "shape") and getattr(value, "shape", None) != ():
        return to_jsonable(np.asarray(value).tolist())
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f if math.isfinite(f) else None


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} values]"
    if isinstance(value, list):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if value is None:
        return "n/a"
    return str(value)


def to_markdown(report: Report) -> str:
    data = report.to_json()
    lines = [f"# jaxlimit report: {report.experiment}", ""]
    lines += report.summary + ([""] if report.summary else [])
    if report.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in report.warnings] + [""]
    if data["verdict"]:
        lines += ["## Verdict", ""] + [f"- **{k}**: {v}" for k, v in data["verdict"].items()] + [""]
    lines += ["## Metrics", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| `{k}` | {_format(v)} |" for k, v in data["metrics"].items()]
    lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in data["figures"]]
    lines += ["", "## Configuration", "", "```json", json.dumps(data["config"], indent=2), "```"]
    if data["timing"]:
        lines += ["", "## Timing (seconds)", ""]
        lines += [f"- {k}: {_format(v)}" for k, v in data["timing"].items()]
    return "\n".join(lines) + "\n"


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write ``report.json``, ``report.md`` and one PNG per figure into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in report.figures.items():
        fig.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    (out / "report.md").write_text(to_markdown(report))
    return out
