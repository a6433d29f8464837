"""Options of ``jaxlimit coord-check``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Computed, Config, choice, integer, real
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES

PARAMETERISATIONS = ("standard", "ntk", "mup", "mean-field")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CoordCheckConfig(Config):
    """The coordinate check of a parameterisation (docs/parameterisations.md): E fully connected networks
    with L hidden layers at each width n are trained a few steps on one batch with SGD or Adam; per layer
    the RMS of the pre-activations, of their change since initialisation and of the change the layer's own
    weight update makes, and the output's change, are fitted as powers of n with confidence intervals over
    the networks. Two verdicts: "mup" (every slope consistent with 0, μP's Θ(1)) and "parameterisation"
    (every slope consistent with the exponent the declared parameterisation predicts); the first layer
    that blows up or freezes is named."""

    NAME = "coord-check"
    HELP = "is a parameterisation μP? per-layer coordinate sizes across widths, fitted slopes, a verdict"
    RUNNER = "jaxlimit.experiments.coord_check.experiment"

    parameterisation: str = choice("mup", "the abc-parameterisation (width exponents of every layer)",
                                   PARAMETERISATIONS, group="model")
    optimizer: str = choice("sgd", "the optimiser, with the parameterisation's learning-rate exponents for it",
                            ("sgd", "adam"), group="training")
    widths: tuple[int, ...] = opt.widths((64, 128, 256, 512, 1024))
    depth: int = opt.depth(2)
    dim: int = integer(8, "input dimension d (inputs N(0, I_d), targets sin(x_1))", high=4096, group="problem")
    points: int = opt.points(16)
    activation: str = choice("relu", "activation φ", ACTIVATION_NAMES, group="model")
    steps: int = integer(3, "training steps recorded after initialisation", high=100, group="training")
    alpha: float | None = real(None, "base learning rate α (layer l trains at α n^-c_l)", high=1e4, nullable=True,
                               group="training", computed=Computed("0.1 for SGD, 0.01 for Adam", lambda config: (
                                   0.1 if config.optimizer == "sgd" else 0.01) if config.alpha is None
                                   else config.alpha))
    ensemble: int = opt.ensemble(4, "networks (seeds) per width, for the slopes' intervals")
    tolerance: float = real(0.1, "how far a slope's interval may miss a predicted exponent (finite-width "
                            "corrections)", low=0.0, low_open=False, high=2.0, group="verdict")
    level: float = real(0.05, "false-alarm rate of each slope's interval (its confidence is 1 − level)", high=0.5,
                        group="verdict")
    seed: int = opt.seed()
    out: str = opt.out("report-coord-check")

    def check(self) -> None:
        opt.check_parameterised_ensemble(self, "the slopes' errors are over networks")

    def estimate_bytes(self) -> float:
        n = max(self.widths)
        params = self.dim * n + (self.depth - 1) * n * n + n
        return 4.0 * self.ensemble * params * 8 + 4.0 * self.ensemble * self.points * n * (self.depth + 1) * 4

    def size_option(self) -> str:
        return "widths"
