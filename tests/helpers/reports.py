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
    assert_text_fits(report)
    for name, fig in report.figures.items():
        title = fig.get_suptitle()
        for fragment in in_every_title:
            assert fragment in title or fragment in exempt.get(name, ()), (name, title, fragment)
        for ax in fig.axes:
            if ax.get_visible() and ax.has_data():
                assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), (name, ax.get_title())


def text_outside(fig, tolerance: float = 1.0) -> list[str]:
    """What of ``fig`` lies outside the figure once drawn as the report writes it (Agg, constrained
    layout): matplotlib's tight bounding box of the figure (every drawn text and artist) against the
    figure's box, then which title, label, legend or axis sticks out; and every axis label that
    overlaps another visible panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox

    def outside(ext) -> bool:
        return (ext.x0 < box.x0 - tolerance or ext.x1 > box.x1 + tolerance or ext.y0 < box.y0 - tolerance
                or ext.y1 > box.y1 + tolerance)

    bad = []
    tight = fig.get_tightbbox(renderer)  # inches
    if tight.x0 < -0.01 or tight.y0 < -0.01 or tight.x1 > fig.bbox_inches.x1 + 0.01 \
            or tight.y1 > fig.bbox_inches.y1 + 0.01:
        bad.append(f"tight bounding box {tight.bounds} beyond the figure's {fig.bbox_inches.bounds}")
    texts = [fig._suptitle] + list(fig.legends) + [t for t in fig.texts]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    for ax in panels:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += [ax.get_legend()] if ax.get_legend() is not None else []
        for axis in (ax.xaxis, ax.yaxis):
            ext = axis.get_tightbbox(renderer)
            if ext is not None and outside(ext):
                bad.append(f"an axis of {ax.get_title()!r} (tick labels)")
    for t in texts:
        if t is None or not t.get_visible() or (hasattr(t, "get_text") and not t.get_text().strip()):
            continue
        if outside(t.get_window_extent(renderer)):
            bad.append(f"outside the figure: {t.get_text() if hasattr(t, 'get_text') else 'a legend'!r}")
    for ax in panels:
        for label in (ax.yaxis.label, ax.xaxis.label):
            if not label.get_text().strip():
                continue
            ext = label.get_window_extent(renderer)
            for other in panels:
                if other is not ax and ext.overlaps(other.get_window_extent(renderer)):
                    bad.append(f"over another panel: {label.get_text()!r}")
    return bad


def assert_text_fits(report_or_figures) -> None:
    """No text of any figure lies outside its figure or over another panel (:func:`text_outside`)."""
    figures = getattr(report_or_figures, "figures", report_or_figures)
    problems = {name: text_outside(fig) for name, fig in figures.items()}
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
