"""Options shared by the experiments and the problem they describe.

Each experiment module defines ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> Report``. The helpers here parse and validate the options
every two-layer experiment shares, so each check (and its error message)
exists once.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from contextlib import contextmanager

import jax
import numpy as np

from jaxlimit.activations import ACTIVATIONS
from jaxlimit.data import Dataset, digits_problem, synthetic_problem
from jaxlimit.errors import InputError
from jaxlimit.losses import get_loss
from jaxlimit.models.two_layer import InitLaw, TwoLayer
from jaxlimit.streams import stream_key
from jaxlimit.training.steps import METHODS, Trainer


def _int_at_least(minimum: int, description: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer")
nonnegative_int = _int_at_least(0, "a non-negative integer")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def int_list(text: str) -> list[int]:
    """Parse ``"64,256,1024"`` into distinct positive integers in increasing order."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"values must be distinct, got {text!r}")
    return sorted(values)


def float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def add_output_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument("--out", default=default_out, help="report directory (default: %(default)s)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="save finished work in DIR after every segment; rerunning resumes")
    parser.add_argument("--fresh", action="store_true",
                        help="with --checkpoint: discard this run's saved work and start over")


def add_problem_arguments(parser: argparse.ArgumentParser, *, width: int = 1024,
                          ensemble: int = 2048, t_max: float = 2.0, points: int = 6,
                          dim: int = 4, probes: int = 2, scaling: str = "xavier") -> None:
    """The two-layer problem: data, model, training and ensemble options."""
    g = parser.add_argument_group("problem")
    g.add_argument("--data", choices=["sphere", "gaussian", "teacher", "digits"], default="sphere",
                   help="inputs on the sphere or Gaussian with a smooth target, a teacher "
                        "network's target, or scikit-learn digits 0 vs 1 (default: %(default)s)")
    g.add_argument("--points", type=positive_int, default=points,
                   help="training points M (default: %(default)s)")
    g.add_argument("--probes", type=nonnegative_int, default=probes,
                   help="probe points Q, recorded but not trained on (default: %(default)s)")
    g.add_argument("--dim", type=positive_int, default=dim,
                   help="input dimension d for synthetic data (default: %(default)s)")
    m = parser.add_argument_group("model")
    m.add_argument("--width", type=positive_int, default=width, help="hidden width N (default: %(default)s)")
    m.add_argument("--scaling", default=scaling,
                   help="xavier (γ=1/2), mean-field (γ=1) or a number γ in [0.5, 1] (default: %(default)s)")
    m.add_argument("--activation", default="tanh",
                   help=f"one of {', '.join(ACTIVATIONS)} (default: %(default)s)")
    m.add_argument("--init", choices=["gaussian", "uniform"], default="gaussian",
                   help="initial law of (c, w) (default: %(default)s)")
    m.add_argument("--c-std", type=positive_float, default=1.0, help="std of c at init (default: 1)")
    m.add_argument("--w-std", type=positive_float, default=1.0, help="std of w at init (default: 1)")
    t = parser.add_argument_group("training")
    t.add_argument("--alpha", type=positive_float, default=1.0, help="base learning rate α (default: 1)")
    t.add_argument("--method", choices=[m_ for m_ in METHODS if m_ != "optax"], default="online",
                   help="online SGD (the papers'), minibatch SGD or full-batch GD (default: %(default)s)")
    t.add_argument("--batch-size", type=positive_int, default=4, help="minibatch size (default: 4)")
    t.add_argument("--loss", choices=["squared", "huber"], default="squared", help="loss (default: squared)")
    t.add_argument("--t-max", type=positive_float, default=t_max, help="training time (default: %(default)s)")
    t.add_argument("--n-times", type=positive_int, default=20, help="saved times after t=0 (default: 20)")
    e = parser.add_argument_group("ensemble")
    e.add_argument("--ensemble", type=positive_int, default=ensemble,
                   help="number of independent networks E (default: %(default)s)")
    e.add_argument("--chunk-size", type=positive_int, default=None,
                   help="members per compiled call (default: from --memory-gb)")
    e.add_argument("--memory-gb", type=positive_float, default=2.0,
                   help="memory budget for one chunk in GB (default: 2)")


@dataclasses.dataclass(frozen=True)
class Problem:
    """A resolved two-layer problem: what ``run_ensemble`` needs, minus the seed."""

    model: TwoLayer
    data: Dataset
    trainer: Trainer
    times: np.ndarray


def build_problem(args: argparse.Namespace, *, width: int | None = None,
                  scaling: str | float | None = None) -> Problem:
    """Turn parsed options into a :class:`Problem` (raising InputError on bad values)."""
    if args.data == "digits":
        data = digits_problem(args.points, args.probes, seed=args.seed)
    else:
        data = synthetic_problem(
            stream_key(args.seed, "data"), args.points, args.dim, args.probes,
            inputs="gaussian" if args.data == "gaussian" else "sphere",
            target="teacher" if args.data == "teacher" else "smooth",
        )
    model = TwoLayer(
        width or args.width, data.dim, args.scaling if scaling is None else scaling,
        args.activation, InitLaw(args.init, args.c_std, args.w_std),
    )
    trainer = Trainer(alpha=args.alpha, method=args.method, batch_size=args.batch_size,
                      loss=get_loss(args.loss))
    times = np.round(np.linspace(0.0, args.t_max, args.n_times + 1), 12)
    return Problem(model, data, trainer, times)


def ensemble_options(args: argparse.Namespace, *stream: int) -> dict:
    """Keyword arguments for ``run_ensemble`` from the ensemble options.

    ``stream`` (for example the width) selects an independent member stream,
    ``stream_key(seed, "members", *stream)``. Ensembles at different widths
    must not share a stream: ``jax.random`` draws of shape (N, d) are the first
    rows of the draws of shape (2N, d) from the same key, so member i of width
    2N would contain member i of width N, and the per-width estimates that a
    power-law fit treats as independent would be correlated. Without
    ``stream`` the members use ``--seed`` as ``run_ensemble`` does.
    """
    return {
        "n_members": args.ensemble,
        "seed": stream_key(args.seed, "members", *stream) if stream else args.seed,
        "checkpoint_dir": getattr(args, "checkpoint", None),
        "fresh": getattr(args, "fresh", False),
        "chunk_size": args.chunk_size,
        "memory_budget": int(args.memory_gb * 1e9),
        "progress": not args.no_progress,
    }


@contextmanager
def timed(timing: dict, stage: str):
    """Add the wall time of a ``with`` block to ``timing[stage]`` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timing[stage] = timing.get(stage, 0.0) + time.perf_counter() - start


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InputError(message)
