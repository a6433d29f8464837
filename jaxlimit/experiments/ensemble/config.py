"""Options of ``jaxlimit ensemble``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError
from jaxlimit.experiments import options as opt


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnsembleConfig(Config):
    """Train an ensemble of two-layer networks g(x) = N^-γ Σ c σ(w·x) (any γ, activation and
    training method) and report the distribution of its outputs over time. No limit is computed:
    this is the engine on its own. See docs/xavier.md for the model and its scalings."""

    NAME = "ensemble"
    HELP = "train an ensemble of two-layer networks and report its output distribution"
    RUNNER = "jaxlimit.experiments.ensemble.experiment"
    DEFAULT_DIM = 4

    data: str = opt.data()
    points: int = opt.points(6)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim()
    width: int = opt.width(256)
    scaling: str = opt.scaling()
    activation: str = opt.activation()
    init: str = opt.init()
    c_std: float = opt.c_std()
    w_std: float = opt.w_std()
    alpha: float = opt.alpha()
    method: str = opt.method()
    batch_size: int = opt.batch_size()
    loss: str = opt.loss()
    t_max: float = opt.t_max(2.0)
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(512)
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-ensemble")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_scaling(self)
        opt.check_data(self)
        opt.check_batch(self)
        opt.check_steps(self, self.width)

    def estimate_bytes(self) -> float:
        return opt.two_layer_bytes(self, self.width, self.ensemble, self.n_times)
