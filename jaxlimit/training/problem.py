"""From a configuration to what :func:`~jaxlimit.training.run_ensemble` takes (two-layer problems).

Every two-layer experiment reads the same option names (``data``, ``points``,
``probes``, ``dim``, ``width``, ``activation``, ``alpha``, ``method``, …) from
its configuration, as fields: a command that fixes one instead of offering it
declares the value as a class attribute (the Xavier commands' Gaussian initial
law and squared loss, three-layer's default chunking). Random streams come from
:mod:`jaxlimit.streams`: the data from ``(data_seed, "data")``
(:func:`jaxlimit.data.two_layer_data`), the members from
``(seed, "members", *stream)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxlimit.data import Dataset, two_layer_data
from jaxlimit.losses import get_loss
from jaxlimit.models.two_layer import InitLaw, TwoLayer
from jaxlimit.streams import stream_key
from jaxlimit.training.run_options import Checkpoint, Execution
from jaxlimit.training.steps import Trainer


@dataclasses.dataclass(frozen=True)
class Problem:
    """A resolved two-layer problem: what ``run_ensemble`` needs, minus the members' stream."""

    model: TwoLayer
    data: Dataset
    trainer: Trainer
    times: np.ndarray


def two_layer_problem(config, *, width: int | None = None, scaling: str | float | None = None,
                      data: Dataset | None = None) -> Problem:
    """The model, data, trainer and saved times a configuration describes.

    Reads ``config``'s fields ``init``, ``c_std``, ``w_std``, ``activation``,
    ``alpha``, ``method``, ``batch_size``, ``loss``, ``t_max``, ``n_times``, and
    ``width`` and ``scaling`` unless given here; a command without an option
    declares its fixed value as a class attribute (e.g. ``XavierConfig.loss``).
    """
    data = two_layer_data(config) if data is None else data
    law = InitLaw(config.init, config.c_std, config.w_std)
    model = TwoLayer(width or config.width, data.dim, config.scaling if scaling is None else scaling,
                     config.activation, law)
    trainer = Trainer(alpha=config.alpha, method=config.method, batch_size=config.batch_size,
                      loss=get_loss(config.loss))
    return Problem(model, data, trainer, saved_times(config.t_max, config.n_times))


def saved_times(t_max: float, n_times: int) -> np.ndarray:
    """0, t_max/n, …, t_max (rounded to 12 digits so that ⌊N t⌋ is exact)."""
    return np.round(np.linspace(0.0, t_max, n_times + 1), 12)


def with_compare_times(times: np.ndarray, compare, t_max: float | None = None) -> tuple[np.ndarray, list[int]]:
    """Merge the compared times (``config.resolve("compare_times")``) into the grid; return it and their
    indices. ``compare`` None means 0, t_max/2 and t_max (t_max: the grid's last time by default)."""
    if compare is None:
        t_max = float(times[-1]) if t_max is None else t_max
        compare = [0.0, t_max / 2.0, t_max]
    compare = sorted(round(float(t), 12) for t in compare)
    grid = np.unique(np.concatenate([times, compare]))
    return grid, [int(np.searchsorted(grid, t)) for t in compare]


def ensemble_options(config, *stream: int, name: str = "members") -> dict:
    """Keyword arguments for ``run_ensemble``: ``n_members``, ``seed``, ``execution`` and ``checkpoint``.

    Reads ``config``'s fields ``ensemble``, ``seed``, ``chunk_size``,
    ``memory_gb``, ``no_progress``, ``checkpoint`` and ``fresh``. ``stream``
    (for example the width) selects an independent member stream
    ``stream_key(seed, name, *stream)`` (``name`` tells arms apart); ensembles at
    different widths must not share one, since ``jax.random`` draws of shape
    (N, d) are the first rows of those of shape (2N, d) from the same key.
    Without it the members use ``seed`` as ``run_ensemble`` does.
    """
    return {
        "n_members": config.ensemble,
        "seed": stream_key(config.seed, name, *stream) if stream or name != "members" else config.seed,
        # progress None: shown in a terminal or notebook, hidden in CI (jaxlimit.display.show_progress)
        "execution": Execution(chunk_size=config.chunk_size, memory_budget=int(config.memory_gb * 1e9),
                               progress=False if config.no_progress else None),
        "checkpoint": None if config.checkpoint is None else Checkpoint(config.checkpoint, fresh=config.fresh),
    }


__all__ = ["Problem", "ensemble_options", "saved_times", "two_layer_problem", "with_compare_times"]
