"""``jaxlimit xavier``: is an ensemble of γ = 1/2 networks Gaussian as the limit predicts?"""

from jaxlimit.experiments.xavier.config import XavierConfig


def run(config: XavierConfig):
    """Run the comparison ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["XavierConfig", "run"]
