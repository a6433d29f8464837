"""Shared checks of a written report: capture the Report a command writes, and its figures' labels."""

from __future__ import annotations


def capture_written_report(monkeypatch) -> dict:
    """Make ``jaxlimit.report.write_report`` also keep the Report it writes, as ``captured["report"]``."""
    import jaxlimit.report

    captured: dict = {}
    original = jaxlimit.report.write_report

    def write_and_keep(report, out):
        captured["report"] = report
        return original(report, out)

    monkeypatch.setattr(jaxlimit.report, "write_report", write_and_keep)
    return captured


def assert_figures_labelled(report, *in_every_title: str, exempt: dict | None = None) -> None:
    """Every figure's title holds the given fragments (``exempt`` maps a figure to fragments it may
    lack) and every visible axes with data has a title and both axis labels."""
    exempt = exempt or {}
    for name, fig in report.figures.items():
        title = fig.get_suptitle()
        for fragment in in_every_title:
            assert fragment in title or fragment in exempt.get(name, ()), (name, title, fragment)
        for ax in fig.axes:
            if ax.get_visible() and ax.has_data():
                assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), (name, ax.get_title())
