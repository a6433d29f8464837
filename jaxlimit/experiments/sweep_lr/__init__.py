"""``jaxlimit sweep lr``: learning-rate transfer across widths: the optimal rate's drift with the width."""

from jaxlimit.experiments.sweep_lr.config import SweepLrConfig


def run(config: SweepLrConfig):
    """Run the sweep ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["SweepLrConfig", "run"]
