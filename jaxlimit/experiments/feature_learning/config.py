"""Options of ``jaxlimit feature-learning``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError, choice, real
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES

SOLVED = ("identity",)
"""Activations whose DMFT the limit solves so far (two-layer linear networks, exactly)."""


def gamma0_option(default: float):
    """``--gamma0``: the one spelling of the feature-learning strength in every command."""
    return real(default, "feature-learning strength γ₀ > 0 (γ₀ → 0: the lazy NTK regime)", high=1e3, group="model")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureLearningConfig(Config):
    """E networks of depth L and width N in the μP parameterisation with feature-learning strength γ₀
    (h¹ = W⁰x/√D, h^{ℓ+1} = W^ℓφ(h^ℓ)/√N, f = w^L·φ(h^L)/(γ₀N), weights N(0, 1)), trained by full-batch
    gradient descent, the Euler scheme of dθ/dt = −η γ₀² N ∇L with step dt, on inputs scaled to
    |x|²/D = 1, against the DMFT limit (docs/feature-learning.md): the infinite-width mean with the
    leading O(1/N) covariance, a calibrated verdict at t = 0, t_max/2 and t_max, the mean's O(1/N) shift,
    each network against its own DMFT path, and the NTK's movement against the DMFT's (the lazy
    limit predicts none)."""

    NAME = "feature-learning"
    HELP = "μP networks (feature-learning strength γ₀) against the DMFT limit and its finite-width covariance"
    RUNNER = "jaxlimit.experiments.feature_learning.experiment"
    DEFAULT_DIM = 8

    data: str = opt.data()
    points: int = opt.points(4)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim(8)
    depth: int = opt.depth(1)
    width: int = opt.width(256)
    activation: str = choice("identity", "activation φ (the limit is solved for 'identity' so far)",
                             ACTIVATION_NAMES, group="model")
    gamma0: float = gamma0_option(1.0)
    alpha: float = opt.alpha(1.0, "learning rate η of the flow dθ/dt = −η γ₀² N ∇L")
    step: float = opt.step(0.005, "feature-learning.md", "gradient descent")
    t_max: float = opt.t_max(2.0, "training time reached (steps = t / dt)")
    n_times: int = opt.n_times(8)
    ensemble: int = opt.ensemble(2000)
    kernel_ensemble: int = opt.kernel_ensemble(32)
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    compare_times: tuple[float, ...] | None = opt.compare_times()
    level: float = opt.level()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-feature-learning")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        check_feature_learning(self)

    def estimate_bytes(self) -> float:
        return feature_bytes(self, self.width, self.ensemble)


def check_feature_learning(config) -> None:
    """What the limit solves, the step count, the ensemble size and the covariance's memory."""
    opt.check_deep(config)
    if config.depth != 1 or config.activation not in SOLVED:
        raise ConfigError("activation" if config.depth == 1 else "depth",
                          "the DMFT limit is solved for two-layer linear networks so far (--depth 1 "
                          f"--activation identity), got depth {config.depth}, activation {config.activation}")
    p = config.points + config.probes
    if p > 60:
        raise ConfigError("points", f"plus --probes is {p}; the finite-width covariance carries ~P⁴/2 numbers, "
                          "at most 60 points")


def feature_bytes(config, width_: int, members: int) -> float:
    """Results, one compiled call, the kernel arm and the limit's tangent solve."""
    p = config.points + config.probes
    d = opt.input_dim(config)
    params = d * width_ + (config.depth - 1) * width_ * width_ + width_
    results = 4.0 * members * (config.n_times + 4) * (p + 2)
    call = min(config.memory_gb * 1e9, 4.0 * 6 * params * min(members, 64))
    kernels = 4.0 * config.kernel_ensemble * (config.n_times + 4) * p * p + 8.0 * p * params * 64
    tangents = 8.0 * (p + p * (p + 1)) * (p * p + p + 1) * (14 + config.n_times + 4)
    return results + call + kernels + tangents
