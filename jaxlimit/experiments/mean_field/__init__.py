"""``jaxlimit mean-field``: γ = 1 networks against their deterministic limit, and beside Xavier."""

from jaxlimit.experiments.mean_field.config import MeanFieldConfig


def run(config: MeanFieldConfig):
    """Run the comparison ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["MeanFieldConfig", "run"]
