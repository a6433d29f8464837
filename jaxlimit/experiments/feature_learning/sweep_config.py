"""Options of ``jaxlimit sweep feature-learning``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, choice
from jaxlimit.experiments import options as opt
from jaxlimit.experiments.feature_learning.config import (
    check_feature_learning, dmft_replicas_option, StepDefault, dmft_samples_option, feature_bytes, gamma0_option,
    step_option,
)
from jaxlimit.names import ACTIVATION_NAMES


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepFeatureLearningConfig(StepDefault, Config):
    """For each width N, an ensemble of μP networks as in ``jaxlimit feature-learning`` against the DMFT
    law at that width: the verdict per width, and fitted as powers of N with confidence intervals the
    pathwise gap (each network against its own DMFT path, expected N^-1/2), the gap of the ensemble mean
    to the infinite-width mean (expected N^-1, the O(1/N) shift) and each network's NTK distance to the
    DMFT's evolving NTK at t_max (expected N^-1/2). At depth ≥ 2 or with a smooth nonlinear φ the DMFT mean
    is solved once on the networks' own steps and compared alone: the mean gap's rate (N^-1) and the NTK
    distance's. docs/feature-learning.md."""

    NAME = "sweep feature-learning"
    HELP = "the feature-learning (μP, DMFT) check across widths: rates of the pathwise, mean and NTK gaps"
    RUNNER = "jaxlimit.experiments.feature_learning.sweep"
    DEFAULT_DIM = 8

    data: str = opt.data()
    points: int = opt.points(4)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim(8)
    depth: int = opt.depth(1)
    widths: tuple[int, ...] = opt.widths((32, 64, 128, 256))
    activation: str = choice("identity", "activation φ (identity: exact; smooth φ: the DMFT sampled; kinked φ "
                             "refused)", ACTIVATION_NAMES, group="model")
    gamma0: float = gamma0_option(1.0)
    alpha: float = opt.alpha(1.0, "learning rate η of the flow dθ/dt = −η γ₀² N ∇L")
    step: float | None = step_option()
    t_max: float = opt.t_max(2.0, "training time reached (steps = t / dt)")
    n_times: int = opt.n_times(4)
    ensemble: int = opt.ensemble(1000, "number of independent networks E at each width")
    kernel_ensemble: int = opt.kernel_ensemble(16)
    dmft_samples: int = dmft_samples_option()
    dmft_replicas: int = dmft_replicas_option()
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    compare_times: tuple[float, ...] | None = opt.compare_times()
    level: float = opt.level()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-sweep-feature-learning")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        check_feature_learning(self)

    def estimate_bytes(self) -> float:
        return feature_bytes(self, max(self.widths), self.ensemble)

    def size_option(self) -> str:
        return "widths"
