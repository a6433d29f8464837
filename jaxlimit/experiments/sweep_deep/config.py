"""Options of ``jaxlimit sweep deep``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, choice
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepDeepConfig(Config):
    """For each width n, an ensemble of deep networks as in ``jaxlimit deep`` against the same
    infinite-width Gaussian (the kernels do not depend on n): each network against its own linearised
    path, the Gaussian W2 distance of the ensemble's law at t_max beyond its Monte Carlo size, and the
    relative change of the empirical NTK during training, each fitted as a power of n with a confidence
    interval. docs/deep.md states what is expected and what is open."""

    NAME = "sweep deep"
    HELP = "the deep NTK-regime check across widths: rates of the pathwise, moment and kernel gaps"
    RUNNER = "jaxlimit.experiments.sweep_deep.experiment"
    DEFAULT_DIM = 8

    data: str = opt.data()
    points: int = opt.points(8)
    probes: int = opt.probes(2)
    dim: int | None = opt.dim()
    depth: int = opt.depth(2)
    widths: tuple[int, ...] = opt.widths((64, 128, 256, 512))
    activation: str = choice("relu", "activation φ", ACTIVATION_NAMES, group="model")
    weight_scale: float = opt.weight_scale(1.4)
    b_std: float = opt.b_std(0.1)
    alpha: float = opt.alpha(0.5, "learning rate α of the flow df/dt = −(α/M) Θ (f − y)")
    step: float = opt.step(0.05, "deep.md", "gradient descent")
    t_max: float = opt.t_max(10.0, "training time reached (steps = t / dt)")
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(512, "number of independent networks E at each width")
    kernel_ensemble: int = opt.kernel_ensemble(32)
    correction_width: int = opt.correction_width()
    correction_networks: int = opt.correction_networks()
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    compare_times: tuple[float, ...] | None = opt.compare_times(opt.UNIT)
    level: float = opt.level()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-sweep-deep")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_deep(self)
        opt.check_correction(self)

    def estimate_bytes(self) -> float:
        return opt.deep_bytes(self, max(self.widths), self.ensemble)

    def size_option(self) -> str:
        return "widths"
