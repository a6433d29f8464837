"""Options of ``jaxlimit feature-learning``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Computed, Config, ConfigError, choice, integer, real
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES

SOLVED = ("identity",)
"""Activations whose DMFT limit with its finite-width covariance is solved at depth 1 (two-layer linear
networks, exactly); every other depth and smooth activation is compared on the mean alone (deep.py)."""

STEP_ODE, STEP_GRID, STEP_SAMPLED = 0.005, 0.05, 0.25
"""The default --step: the ODE limit of two-layer linear networks is step-free (0.005); elsewhere the DMFT is
solved on the networks' own steps, exactly (identity: (steps × points)² matrices, 0.05) or by sampling sites
(a smooth φ: tangents through every site, 0.25)."""


def uses_deep_dmft(config) -> bool:
    """Whether the comparison is the deep DMFT's (mean only): depth ≥ 2, or a nonlinear φ at depth 1."""
    return config.depth != 1 or config.activation not in SOLVED


def default_step(config) -> float:
    if not uses_deep_dmft(config):
        return STEP_ODE
    return STEP_GRID if config.activation == "identity" else STEP_SAMPLED


def step_option():
    """``--step`` of the feature-learning commands, its default depending on the limit solved."""
    return opt.step(None, "feature-learning.md", "gradient descent", computed=Computed(
        f"{STEP_ODE:g} at depth 1 with identity, {STEP_GRID:g} with identity at depth ≥ 2, {STEP_SAMPLED:g} with "
        "a smooth nonlinear φ (the DMFT is then solved on the networks' own steps)", default_step))


class StepDefault:
    """Mixin: a None --step is set to :func:`default_step` before the checks (every use of ``config.step``
    sees the value the run uses), and set again by :meth:`replace` unless the step was given."""

    def __post_init__(self):
        object.__setattr__(self, "_step_computed", self.step is None)
        if self.step is None:
            object.__setattr__(self, "step", default_step(self))
        super().__post_init__()

    def replace(self, **changes):
        if getattr(self, "_step_computed", False) and "step" not in changes:
            changes["step"] = None
        return super().replace(**changes)


def gamma0_option(default: float):
    """``--gamma0``: the one spelling of the feature-learning strength in every command."""
    return real(default, "feature-learning strength γ₀ > 0 (γ₀ → 0: the lazy NTK regime)", high=1e3, group="model")


def dmft_samples_option():
    return integer(2000, "sites per layer of the sampled DMFT (smooth φ; depth ≥ 2 or nonlinear φ)",
                   low=2, high=1_000_000, group="limit")


def dmft_replicas_option():
    return integer(4, "independent DMFT solves whose spread is its Monte Carlo standard error (smooth φ)",
                   low=2, high=1000, group="limit")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureLearningConfig(StepDefault, Config):
    """E networks of depth L and width N in the μP parameterisation with feature-learning strength γ₀
    (h¹ = W⁰x/√D, h^{ℓ+1} = W^ℓφ(h^ℓ)/√N, f = w^L·φ(h^L)/(γ₀N), weights N(0, 1)), trained by full-batch
    gradient descent, the Euler scheme of dθ/dt = −η γ₀² N ∇L with step dt, on inputs scaled to
    |x|²/D = 1, against the DMFT limit (docs/feature-learning.md): the infinite-width mean with the
    leading O(1/N) covariance, a calibrated verdict at t = 0, t_max/2 and t_max, the mean's O(1/N) shift,
    each network against its own DMFT path, and the NTK's movement against the DMFT's (the lazy
    limit predicts none). At depth ≥ 2, or with a smooth nonlinear φ, the limit is the deep DMFT solved on
    the networks' own steps (exact for identity, sampled otherwise) and the verdict is on the mean alone:
    its finite-width covariance is not implemented there."""

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
    activation: str = choice("identity", "activation φ (identity: exact; smooth φ: the DMFT sampled; kinked φ "
                             "refused)", ACTIVATION_NAMES, group="model")
    gamma0: float = gamma0_option(1.0)
    alpha: float = opt.alpha(1.0, "learning rate η of the flow dθ/dt = −η γ₀² N ∇L")
    step: float | None = step_option()
    t_max: float = opt.t_max(2.0, "training time reached (steps = t / dt)")
    n_times: int = opt.n_times(8)
    ensemble: int = opt.ensemble(2000)
    kernel_ensemble: int = opt.kernel_ensemble(32)
    dmft_samples: int = dmft_samples_option()
    dmft_replicas: int = dmft_replicas_option()
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
    """What the limit solves, the step count, the ensemble size and the covariance's memory (at depth ≥ 2 or
    a nonlinear φ, the DMFT's grid: :func:`~jaxlimit.experiments.feature_learning.deep.check_deep_dmft`)."""
    opt.check_deep(config)
    if uses_deep_dmft(config):
        from jaxlimit.experiments.feature_learning.deep import check_deep_dmft

        check_deep_dmft(config)
        return
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
