"""Figures of ``jaxlimit coord-check``: microsoft/mup's picture (one panel per step, coordinate size
against width on log–log axes, one line per layer) with each fitted slope and its band
(:func:`jaxlimit.figures.coord_figure`, shared with notebooks)."""

from jaxlimit.figures import coord_figure

__all__ = ["coord_figure"]
