"""Options of ``jaxlimit sweep lr``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Computed, Config, choice, integer, real, reals
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES

PARAMETERISATIONS = ("standard", "ntk", "mup", "mean-field")
"""jaxlimit.models.parameterisation.PRESETS, spelt out: experiments do not import one another, and the
models package imports JAX (``--help`` does not)."""

ALPHAS_TEXT = "2^-10, 2^-9, …, 2^3 for SGD; 2^-14, …, 2^2 for Adam"


def _alphas(config) -> tuple[float, ...]:
    from jaxlimit.training.transfer import default_alphas

    return default_alphas(config.optimizer) if config.alphas is None else config.alphas


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepLrConfig(Config):
    """Learning-rate transfer, measured (docs/parameterisations.md): at each width n, E fully connected
    networks with L hidden layers in the given parameterisation are trained for a fixed budget of steps
    (SGD or Adam, layer l at α n^-c_l) at every base rate α of a log grid; the training loss after the
    budget against α gives each network's optimal α (a parabola in log α through the grid minimum and its
    neighbours), and the drift of the optimal log α with log n is fitted as a slope with a confidence
    interval. Verdict "transfer": consistent when the slope is consistent with 0 (μP's promise);
    standard parameterisation's optimum falls with the width."""

    NAME = "sweep lr"
    HELP = "learning-rate transfer across widths: the optimal rate's drift with the width, with an interval"
    RUNNER = "jaxlimit.experiments.sweep_lr.experiment"

    parameterisation: str = choice("mup", "the abc-parameterisation (width exponents of every layer)",
                                   PARAMETERISATIONS, group="model")
    optimizer: str = choice("sgd", "the optimiser, with the parameterisation's learning-rate exponents for it",
                            ("sgd", "adam"), group="training")
    widths: tuple[int, ...] = opt.widths((64, 128, 256, 512))
    depth: int = opt.depth(2)
    dim: int = integer(8, "input dimension d (inputs N(0, I_d), targets sin(x_1))", high=4096, group="problem")
    points: int = opt.points(16)
    activation: str = choice("relu", "activation φ", ACTIVATION_NAMES, group="model")
    alphas: tuple[float, ...] | None = reals(
        None, "base learning rates α, a log grid (layer l trains at α n^-c_l), at least 3", low=0.0, low_open=True,
        high=1e4, min_len=3, group="training", computed=Computed(ALPHAS_TEXT, _alphas))
    steps: int = integer(20, "training steps: the budget after which the loss is compared", high=10000,
                         group="training")
    ensemble: int = opt.ensemble(4, "networks (seeds) per width and rate, for the optimum's error")
    tolerance: float = real(0.1, "how far the drift's interval may miss 0 with transfer still holding",
                            low=0.0, low_open=False, high=2.0, group="verdict")
    level: float = real(0.05, "false-alarm rate of the drift's interval (its confidence is 1 − level)", high=0.5,
                        group="verdict")
    seed: int = opt.seed()
    out: str = opt.out("report-sweep-lr")

    def check(self) -> None:
        opt.check_parameterised_ensemble(self, "the optimum's error is over networks")

    def estimate_bytes(self) -> float:
        n = max(self.widths)
        params = self.dim * n + (self.depth - 1) * n * n + n
        networks = self.ensemble * len(_alphas(self))
        return 4.0 * networks * (params * 8 + self.points * n * (self.depth + 1) * 4)

    def size_option(self) -> str:
        return "widths"
