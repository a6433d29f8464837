"""``jaxlimit committee``: soft committee machines learning online at input dimension D against the
Saad–Solla / Goldt order-parameter ODEs and their linear-noise fluctuations."""

from jaxlimit.experiments.committee.config import CommitteeConfig


def run(config: CommitteeConfig):
    """Run the measurements ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["CommitteeConfig", "run"]
