"""``jaxlimit feature-learning``: μP networks (strength γ₀) against the DMFT feature-learning limit."""

from jaxlimit.experiments.feature_learning.config import FeatureLearningConfig


def run(config: FeatureLearningConfig):
    """Run the comparison ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["FeatureLearningConfig", "run"]
