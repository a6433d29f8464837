"""``jaxlimit three-layer``: three-layer mean-field networks approach their limit (docs/three-layer.md)."""

from jaxlimit.experiments.three_layer.config import ThreeLayerConfig


def run(config: ThreeLayerConfig):
    """Run the study ``config`` describes and return its :class:`~jaxlimit.report.Report`."""
    from jaxlimit.experiments import run as run_experiment

    return run_experiment(config)


__all__ = ["ThreeLayerConfig", "run"]
