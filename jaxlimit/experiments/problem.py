"""From a configuration to what the engine and the limits take (deep problems, timing).

The two-layer problem's library functions live in the library
(:func:`jaxlimit.data.two_layer_data`, :mod:`jaxlimit.training.problem`) and
are re-exported here for the experiments.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from jaxlimit.data import data_seed, two_layer_data
from jaxlimit.limits.mlp import mlp_limit
from jaxlimit.limits.training_correction import TrainingCorrection, mlp_training_correction
from jaxlimit.models.mlp import MLP
from jaxlimit.training.problem import (
    Problem, ensemble_options, saved_times, two_layer_problem, with_compare_times,
)
from jaxlimit.streams import stream_seed
from jaxlimit.training.steps import Trainer


def deep_problem(config, width: int, data=None):
    """The data, the network of this width, the trainer, the saved times and the compared indices."""
    data = two_layer_data(config) if data is None else data
    model = MLP((width,) * config.depth, data.dim, config.activation, W_std=config.weight_scale, b_std=config.b_std,
                time_step=config.step)
    trainer = Trainer(alpha=config.alpha, method="fullbatch")
    times, idx = with_compare_times(saved_times(config.t_max, config.n_times), config.resolve("compare_times"))
    return data, model, trainer, times, idx


def deep_limit(config, data):
    return mlp_limit(data.x_train, data.y_train, data.x_probe, depth=config.depth, activation=config.activation,
                     W_std=config.weight_scale, b_std=config.b_std, learning_rate=config.alpha)


def deep_correction(config, data, t_max: float) -> TrainingCorrection:
    """The 1/n correction of a deep problem up to ``t_max``, estimated at ``--correction-width`` from
    ``--correction-networks`` networks of its own seed stream (docs/corrections.md)."""
    return mlp_training_correction(
        data.x_train, data.y_train, data.x_probe, depth=config.depth, activation=config.activation,
        W_std=config.weight_scale, b_std=config.b_std, learning_rate=config.alpha, time_step=config.step,
        t_max=t_max, width=config.correction_width, networks=config.correction_networks,
        seed=stream_seed(config.seed, "correction"))


@contextmanager
def timed(timing: dict, stage: str):
    """Add the wall time of a ``with`` block to ``timing[stage]`` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timing[stage] = timing.get(stage, 0.0) + time.perf_counter() - start


__all__ = ["Problem", "data_seed", "deep_correction", "deep_limit", "deep_problem", "ensemble_options", "saved_times", "timed", "two_layer_data",
           "two_layer_problem", "with_compare_times"]
