"""``jaxlimit sweep committee``: soft committee machines at several input dimensions D: the rates in D
of the gap to the order-parameter ODEs and the escape times from the plateau against ln D/(2λ)."""

from jaxlimit.experiments.sweep_committee.config import SweepCommitteeConfig


def run(config: SweepCommitteeConfig):
    """Run the sweep ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["SweepCommitteeConfig", "run"]
