"""Figures of ``jaxlimit sweep lr``: the loss after the budget against α per width, and the optimal α
against the width with the fitted drift and its band (:mod:`jaxlimit.figures`, shared with notebooks)."""

from jaxlimit.figures import lr_loss_figure as loss_figure
from jaxlimit.figures import lr_optimum_figure as optimum_figure

__all__ = ["loss_figure", "optimum_figure"]
