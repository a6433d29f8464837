"""Options of ``jaxlimit sweep xavier``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError
from jaxlimit.experiments import options as opt


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepXavierConfig(Config):
    """For each width N an ensemble of E networks is trained on the same problem and compared with
    the same Xavier limit (the kernels do not depend on N): each network against its own limit path
    (slope −1/2 expected), and the Gaussian W2 distance of the coupled moment estimate at t_max
    (the finite-width bias, O(1/N); resolved only where it exceeds twice its bootstrap noise).
    Slopes come with confidence intervals from weighted log–log fits (docs/xavier.md,
    docs/statistics.md)."""

    NAME = "sweep xavier"
    HELP = "the Xavier check across widths: pathwise and distributional errors against N"
    RUNNER = "jaxlimit.experiments.sweep_xavier.experiment"
    DEFAULT_DIM = 8
    # Fixed, not options: the Xavier limit compared here is of the Gaussian initial law and the
    # squared loss (two_layer_problem reads them as it reads the fields).
    init = "gaussian"
    loss = "squared"

    data: str = opt.data()
    points: int = opt.points(4)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim()
    widths: tuple[int, ...] = opt.widths((64, 256, 1024, 4096))
    activation: str = opt.activation()
    c_std: float = opt.c_std()
    w_std: float = opt.w_std()
    alpha: float = opt.alpha()
    method: str = opt.method()
    batch_size: int = opt.batch_size()
    t_max: float = opt.t_max(2.0)
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(512, "number of independent networks E at each width")
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    compare_times: tuple[float, ...] | None = opt.compare_times()
    level: float = opt.level()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-sweep-xavier")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_data(self)
        opt.check_batch(self)
        opt.check_compare_times(self)
        opt.check_steps(self, max(self.widths))
        p = self.points + self.probes
        if self.ensemble < p + 2:
            raise ConfigError("ensemble", f"must be at least P + 2 = {p + 2} to compare {p} outputs, "
                              f"got {self.ensemble}")

    def estimate_bytes(self) -> float:
        return opt.two_layer_bytes(self, max(self.widths), self.ensemble, self.n_times + 3)

    def size_option(self) -> str:
        return "widths"
