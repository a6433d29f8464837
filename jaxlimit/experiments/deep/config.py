"""Options of ``jaxlimit deep``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, choice
from jaxlimit.experiments import options as opt
from jaxlimit.names import ACTIVATION_NAMES


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
    dim: int | None = opt.dim()
    depth: int = opt.depth(2)
    width: int = opt.width(512)
    activation: str = choice("relu", "activation φ", ACTIVATION_NAMES, group="model")
    weight_scale: float = opt.weight_scale(1.4)
    b_std: float = opt.b_std(0.1)
    alpha: float = opt.alpha(0.5, "learning rate α of the flow df/dt = −(α/M) Θ (f − y)")
    step: float = opt.step(0.05, "deep.md", "gradient descent")
    t_max: float = opt.t_max(10.0, "training time reached (steps = t / dt)")
    n_times: int = opt.n_times()
    ensemble: int = opt.ensemble(1024)
    kernel_ensemble: int = opt.kernel_ensemble(64)
    correction_width: int = opt.correction_width()
    correction_networks: int = opt.correction_networks()
    chunk_size: int | None = opt.chunk_size()
    memory_gb: float = opt.memory_gb()
    compare_times: tuple[float, ...] | None = opt.compare_times(opt.UNIT)
    level: float = opt.level()
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-deep")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()
    no_progress: bool = opt.no_progress()

    def check(self) -> None:
        opt.check_deep(self)
        opt.check_correction(self)

    def estimate_bytes(self) -> float:
        return opt.deep_bytes(self, self.width, self.ensemble)
