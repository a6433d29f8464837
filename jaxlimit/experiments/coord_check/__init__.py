"""``jaxlimit coord-check``: is a parameterisation μP? Per-layer coordinate sizes across widths, fitted
slopes with intervals, verdicts (docs/parameterisations.md)."""

from jaxlimit.experiments.coord_check.config import CoordCheckConfig


def run(config: CoordCheckConfig):
    """Run the coordinate check ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["CoordCheckConfig", "run"]
