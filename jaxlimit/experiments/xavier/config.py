"""Options of ``jaxlimit xavier``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError, integer, real
from jaxlimit.experiments import options as opt


@dataclasses.dataclass(frozen=True, kw_only=True)
class XavierConfig(Config):
    """E networks g(x) = N^-1/2 Σ c σ(w·x) of width N are trained by SGD; the Xavier limit
    (docs/xavier.md) predicts the Gaussian law of their outputs on the training and probe points at
    every time, and each network's own limit path from its initial outputs. The report compares the
    two: a calibrated verdict at t = 0, t_max/2 and t_max (docs/statistics.md), effect sizes in
    standard errors, each network against its own path, and the global minimum when A ≻ 0."""

    NAME = "xavier"
    HELP = "the main job: γ = 1/2 networks against their Gaussian infinite-width limit"
    RUNNER = "jaxlimit.experiments.xavier.experiment"
    DEFAULT_DIM = 8
    # Fixed, not options: the Xavier limit compared here is of the Gaussian initial law and the
    # squared loss (two_layer_problem reads them as it reads the fields).
    init = "gaussian"
    loss = "squared"

    data: str = opt.data()
    points: int = opt.points(4)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim()
    width: int = opt.width(1024)
    activation: str = opt.activation()
    c_std: float = opt.c_std()
    w_std: float = opt.w_std()
    alpha: float = opt.alpha()
    method: str = opt.method()
    batch_size: int = opt.batch_size()
    t_max: float = opt.t_max(2.0)
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(2048)
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    compare_times: tuple[float, ...] | None = opt.compare_times()
    level: float = opt.level()
    long_members: int = integer(16, "networks trained to the long time to show the global minimum; 0 skips",
                                low=0, high=4096, group="global minimum")
    long_time: float = real(40.0, "the longest time of the global-minimum run; it stops earlier once the "
                            "kernel bound promises a hundredfold loss drop", high=1e4, group="global minimum")
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-xavier")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_data(self)
        opt.check_batch(self)
        opt.check_compare_times(self)
        opt.check_steps(self, self.width)
        opt.check_steps(self, self.width, self.long_time)
        p = self.points + self.probes
        if self.ensemble < p + 2:
            raise ConfigError("ensemble", f"must be at least P + 2 = {p + 2} to compare {p} outputs, "
                              f"got {self.ensemble}")

    def estimate_bytes(self) -> float:
        return opt.two_layer_bytes(self, self.width, self.ensemble, self.n_times + 3)
