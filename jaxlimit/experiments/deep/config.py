"""Options of ``jaxlimit deep``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError, choice, integer, real
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES

DEEP_ACTIVATIONS = ACTIVATION_NAMES


def depth(default: int):
    return integer(default, "hidden layers L", high=32, group="model")


def b_std(default: float = 0.0):
    return real(default, "standard deviation σ_b of the biases (0: no biases)", low=0.0, low_open=False,
                high=1e3, group="model")


def kernel_ensemble(default: int):
    return integer(default, "networks whose empirical NTK is recorded at every saved time (0 skips)", low=0,
                   high=100_000, group="ensemble")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeepConfig(Config):
    """E fully connected networks of depth L and width n in neural-tangents' "ntk" parameterisation
    (σ_w, σ_b), trained by full-batch gradient descent on the mean squared loss with learning rate α
    and time step dt, against the infinite-width, infinite-ensemble Gaussian law of their outputs
    (docs/deep.md): a calibrated verdict at t = 0, 1 and t_max, each network against its own
    linearised path, and the empirical NTK at initialisation and its change during training."""

    NAME = "deep"
    HELP = "deep fully connected networks (NTK regime) against their infinite-ensemble Gaussian"
    RUNNER = "jaxlimit.experiments.deep.experiment"
    DEFAULT_DIM = 8

    data: str = opt.data()
    points: int = opt.points(8)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim(8)
    depth: int = depth(2)
    width: int = opt.width(256)
    activation: str = choice("relu", "activation φ", DEEP_ACTIVATIONS, group="model")
    w_std: float = real(1.5, "weight scale σ_w", high=1e3, group="model")
    b_std: float = b_std(0.1)
    alpha: float = real(1.0, "learning rate α of the flow df/dt = −(α/M) Θ (f − y)", high=1e4, group="training")
    step: float = opt.step(0.05, "time per gradient-descent step dt (t = dt · steps)")
    t_max: float = opt.t_max(10.0, "training time reached (steps = t / dt)")
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(1024)
    kernel_ensemble: int = kernel_ensemble(64)
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    compare_times: tuple[float, ...] | None = opt.compare_times()
    level: float = opt.level()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-deep")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_two_layer(self)
        if self.t_max / self.step >= 2**31:
            raise ConfigError("step", f"makes t_max / dt = {self.t_max / self.step:.3g} steps, more than 2^31")
        if self.kernel_ensemble == 1:
            raise ConfigError("kernel_ensemble", "must be 0 or at least 2 (a kernel's spread needs two networks)")
        p = self.points + self.probes
        if self.ensemble < p + 2:
            raise ConfigError("ensemble", f"must be at least P + 2 = {p + 2} to compare {p} outputs, "
                              f"got {self.ensemble}")

    def estimate_bytes(self) -> float:
        return deep_bytes(self, self.width, self.ensemble)


def deep_bytes(config, width: int, members: int) -> float:
    """Results of every member, plus one compiled call (parameters, gradients, Jacobians of the kernel arm)."""
    d = opt.input_dim(config)
    p = config.points + config.probes
    params = d * width + (config.depth - 1) * width * width + width
    results = 4.0 * members * (config.n_times + 4) * (p + 2)
    call = min(config.memory_gb * 1e9, 4.0 * 6 * params * min(members, 64))
    jacobians = 4.0 * p * params * min(config.kernel_ensemble, 64)
    return results + call + jacobians
