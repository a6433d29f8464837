"""Options of ``jaxlimit sweep gamma``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config
from jaxlimit.experiments import options as opt


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepGammaConfig(Config):
    """For each γ and width N an ensemble of E networks g(x) = N^-γ Σ c σ(w·x) is trained (rate
    α N^-(2-2γ), ⌊N t⌋ steps) and, at t_max, the spread of its outputs and the bias of its mean
    against kernel regression from h = 0 (the Xavier limit's mean) are fitted as powers of N
    (docs/mean-field.md#the-gamma-family): the spread exponent lies between 1/2 − γ (the initial
    output carried along) and −1/2 (the kernel's sampling fluctuation); the bias, even in
    ε = N^(γ−1) for mean-zero c, is O(N^(2γ−2)) + O(1/N). At γ = 1 the bias against the mean-field
    limit itself is O(1/N). The kernels assume centred Gaussian weights and the squared loss."""

    NAME = "sweep gamma"
    HELP = "the γ family: how the output spread and the bias scale with N, against their predicted exponents"
    RUNNER = "jaxlimit.experiments.sweep_gamma.experiment"
    DEFAULT_DIM = 4
    # Fixed, not options: the Xavier limit compared here is of the Gaussian initial law and the
    # squared loss (two_layer_problem reads them as it reads the fields).
    init = "gaussian"
    loss = "squared"

    data: str = opt.data()
    points: int = opt.points(6)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim()
    gammas: tuple[float, ...] = opt.gammas((0.5, 0.625, 0.75, 0.875, 1.0))
    widths: tuple[int, ...] = opt.widths((64, 128, 256, 512, 1024))
    activation: str = opt.activation()
    c_std: float = opt.c_std()
    w_std: float = opt.w_std()
    alpha: float = opt.alpha()
    method: str = opt.method("fullbatch")
    batch_size: int = opt.batch_size()
    t_max: float = opt.t_max(4.0)
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(512, "number of independent networks E at each (γ, N)")
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    particles: int = opt.particles(2**16, "the γ = 1 mean-field limit's quadrature")
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-sweep-gamma")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_data(self)
        opt.check_batch(self)
        opt.check_steps(self, max(self.widths))
        opt.check_ensemble_size(self, "for the control variate, which regresses the outputs on the initial ones")

    def _sizes(self) -> dict[str, float]:
        saved = self.n_times + 1
        return {"ensemble": opt.two_layer_bytes(self, max(self.widths), self.ensemble, saved),
                "particles": opt.particle_flow_bytes(self, self.particles) if 1.0 in self.gammas else 0.0}

    def estimate_bytes(self) -> float:
        return max(self._sizes().values())

    def size_option(self) -> str:
        sizes = self._sizes()
        return max(sizes, key=sizes.get)
