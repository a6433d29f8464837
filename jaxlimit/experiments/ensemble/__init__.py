"""``jaxlimit ensemble``: the engine alone, an ensemble of two-layer networks and its output law."""

from jaxlimit.experiments.ensemble.config import EnsembleConfig


def run(config: EnsembleConfig):
    """Train the ensemble ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["EnsembleConfig", "run"]
