"""``jaxlimit sweep deep``: the deep NTK-regime check across widths, with rates in n."""

from jaxlimit.experiments.sweep_deep.config import SweepDeepConfig


def run(config: SweepDeepConfig):
    """Run the sweep ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["SweepDeepConfig", "run"]
