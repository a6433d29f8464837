"""``jaxlimit deep``: deep fully connected networks against the infinite-ensemble Gaussian (NTK regime)."""

from jaxlimit.experiments.deep.config import DeepConfig


def run(config: DeepConfig):
    """Run the comparison ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["DeepConfig", "run"]
