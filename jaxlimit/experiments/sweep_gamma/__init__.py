"""``jaxlimit sweep gamma``: how the spread and the bias scale with N across the γ family."""

from jaxlimit.experiments.sweep_gamma.config import SweepGammaConfig


def run(config: SweepGammaConfig):
    """Run the sweep ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["SweepGammaConfig", "run"]
