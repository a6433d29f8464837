"""``jaxlimit sweep xavier``: the Xavier check across widths, with rates in N."""

from jaxlimit.experiments.sweep_xavier.config import SweepXavierConfig


def run(config: SweepXavierConfig):
    """Run the sweep ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["SweepXavierConfig", "run"]
