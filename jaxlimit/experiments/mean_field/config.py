"""Options of ``jaxlimit mean-field``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError
from jaxlimit.experiments import options as opt


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeanFieldConfig(Config):
    """At each width N an ensemble of E networks g(x) = N^-1 Σ c σ(w·x) is trained and compared with
    the deterministic mean-field limit h̄_t, a gradient flow of particles (docs/mean-field.md):
    the law of large numbers (the ensemble variance ∝ 1/N, the ensemble mean → h̄_t) and the
    central limit theorem at the largest width, against the Gaussian N(h̄_t, C_t/N) whose covariance
    is predicted by differentiating the limit with respect to particle weights. C_t is complete for
    full-batch descent (the default); under online or minibatch SGD the flow is still the limit but
    C_t leaves out the data noise, so the CLT verdict is not taken. Xavier networks (γ = 1/2) trained
    beside them show how far parameters and the empirical kernel move in each regime."""

    NAME = "mean-field"
    HELP = "γ = 1 networks against the mean-field limit: LLN, CLT with a predicted covariance, vs Xavier"
    RUNNER = "jaxlimit.experiments.mean_field.experiment"
    DEFAULT_DIM = 4

    data: str = opt.data()
    points: int = opt.points(6)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim()
    widths: tuple[int, ...] = opt.widths((64, 128, 256, 512, 1024))
    activation: str = opt.activation()
    init: str = opt.init()
    c_std: float = opt.c_std()
    w_std: float = opt.w_std()
    alpha: float = opt.alpha()
    method: str = opt.method("fullbatch")
    batch_size: int = opt.batch_size()
    loss: str = opt.loss()
    t_max: float = opt.t_max(2.0)
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(1024, "number of independent mean-field networks E at each width")
    xavier_ensemble: int = opt.arm_ensemble(256, "Xavier (γ = 1/2)", "trained beside them on the same data")
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    particles: int = opt.particles(2**18)
    fluctuation_particles: int = opt.particles(2**14, "the quadrature behind the predicted covariance C_t")
    compare_times: tuple[float, ...] | None = opt.compare_times()
    level: float = opt.level()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-mean-field")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_data(self)
        opt.check_batch(self)
        opt.check_compare_times(self)
        opt.check_steps(self, max(self.widths))
        opt.check_ensemble_size(self)
        p = self.points + self.probes
        if self.xavier_ensemble == 1:
            raise ConfigError("xavier_ensemble", "must be 0 (no Xavier networks) or at least 2, got 1")
        if self.fluctuation_particles < p + 1:
            raise ConfigError("fluctuation_particles", f"must be at least P + 1 = {p + 1} for a covariance "
                              f"of {p} outputs, got {self.fluctuation_particles}")

    def _sizes(self) -> dict[str, float]:
        n_compare = 3 if self.compare_times is None else len(self.compare_times)
        saved = self.n_times + 1 + n_compare
        p = self.points + self.probes
        # Every width's results are kept (the figures compare them); one compiled call at a time.
        kept = sum(4.0 * (self.ensemble + self.xavier_ensemble) * (saved + 1) * (p + 4) for _ in self.widths)
        return {
            "ensemble": kept + opt.two_layer_bytes(self, max(self.widths), self.ensemble, saved),
            "particles": opt.particle_flow_bytes(self, self.particles, n_compare),
            "fluctuation_particles": opt.influence_bytes(self, self.fluctuation_particles, n_compare + 1),
        }

    def estimate_bytes(self) -> float:
        return max(self._sizes().values())

    def size_option(self) -> str:
        sizes = self._sizes()
        return max(sizes, key=sizes.get)
