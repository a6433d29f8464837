"""Options of ``jaxlimit teacher-student``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError, integer, integers, real, reals
from jaxlimit.experiments import options as opt

MAX_UNITS = 64
"""The largest K: the flows cost O(K³) per evaluation and the Hessian (K²)² entries."""

PLANE_STARTS = 5
"""Starts in the symmetric plane that run with the noisy ones (symmetric, symmetry-breaking, three more)."""

SAVED_TIMES = 401
"""Saved times of the K ≥ 2 flows (dense early, coarser on the plateaus)."""

ESCAPE_TIMES = 4001
"""Saved times of the escape-time flows."""

SGD_SAVES = 50
"""Saved times of the SGD and gradient-descent runs after t = 0."""

MIN_SGD_STEPS = 10


@dataclasses.dataclass(frozen=True, kw_only=True)
class TeacherStudentConfig(Config):
    """Tian's two-layer ReLU teacher–student (docs/teacher-student.md): the student
    g(x; W) = Σ_j relu(w_j·x) learns a teacher g(x; W*) from Gaussian inputs. The limit is the
    population gradient flow, integrated in closed form. Four measurements: (1) K ≥ 2, W* = I_K:
    the symmetric start against the saddle value, the reduced (x, y) flow against the full flow,
    and where the symmetric start plus noise δ ends (W* up to a permutation, a spurious local
    minimum, or still moving); (2) the time near the saddle against log(1/δ), slope 1/λ predicted;
    (3) K = 1: the probability of reaching w* from a uniform ball of radius ε √(2π/(d+1)) ‖w*‖
    against the bound (1 − ε)/2, with Wilson intervals; (4) SGD with n samples per step against
    gradient descent with the same step and against the flow: the deviation's slope in n,
    −1/2 predicted. --seed draws the starts and the SGD samples; --data-seed the problem's random
    parts (the SGD start and the direction of the escape perturbation)."""

    NAME = "teacher-student"
    HELP = "Tian's ReLU teacher–student: saddle, symmetry breaking, K = 1 bound, SGD against the flow"
    RUNNER = "jaxlimit.experiments.teacher_student.experiment"

    ks: tuple[int, ...] = integers((2, 5, 10), "numbers of units K of the orthonormal teacher W* = I_K, "
                                   f"comma-separated, each in [2, {MAX_UNITS}]", low=2, high=MAX_UNITS,
                                   group="orthonormal teacher, K ≥ 2")
    noise: float = real(1e-6, "Frobenius size δ of the noise added to the symmetric start, in [1e-13, 0.5]",
                        low=1e-13, high=0.5, low_open=False, group="orthonormal teacher, K ≥ 2")
    ensemble: int = opt.ensemble(32, "noisy symmetric starts per K (the main ensemble E)")
    t_max: float = opt.t_max(400.0, "flow horizon of the K ≥ 2 runs")
    escape_k: int = integer(2, f"K of the time-near-the-saddle measurement, in [2, {MAX_UNITS}]", low=2,
                            high=MAX_UNITS, group="time near the saddle")
    escape_deltas: tuple[float, ...] = reals(
        (1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2),
        "perturbation sizes δ at the saddle, at least three in [1e-13, 0.05] (below the ball of radius "
        "0.1 ‖saddle‖ ≥ 0.107 in which the time is measured)", low=1e-13, high=0.05, min_len=3,
        group="time near the saddle")
    dims: tuple[int, ...] = integers((2, 10, 50), "input dimensions d of the K = 1 runs", high=10_000,
                                     group="single unit, K = 1")
    epsilons: tuple[float, ...] = reals((0.1, 0.3, 0.5, 0.7, 0.9), "ε in (0, 1]: the start is uniform in the "
                                        "ball of radius ε √(2π/(d+1)) ‖w*‖", low=0.0, low_open=True, high=1.0,
                                        group="single unit, K = 1")
    k1_ensemble: int = opt.ensemble(2000, "starts per (d, ε) of the K = 1 runs")
    k1_time: float = real(40.0, "flow horizon of the K = 1 runs", high=1e4, group="single unit, K = 1")
    sgd_k: int = integer(2, f"K of the SGD runs (W* = I_K), in [1, {MAX_UNITS}]", high=MAX_UNITS,
                         group="finite samples")
    sgd_samples: tuple[int, ...] = integers((16, 128, 1024, 4096), "samples per SGD step n, at least two",
                                            high=10**6, min_len=2, group="finite samples")
    sgd_ensemble: int = opt.ensemble(100, "SGD runs per n")
    step: float = opt.step(0.05, "teacher-student.md", high=1.0)
    sgd_time: float = real(10.0, "time η · steps of the SGD and gradient-descent runs", high=1e4,
                           group="finite samples")
    seed: int = opt.seed()
    data_seed: int | None = opt.data_seed()
    out: str = opt.out("report-teacher-student")
    checkpoint: str | None = opt.checkpoint()
    fresh: bool = opt.fresh()

    def check(self) -> None:
        steps = self.sgd_steps
        if steps < MIN_SGD_STEPS:
            raise ConfigError("sgd_time", f"/ --step gives {steps} steps; at least {MIN_SGD_STEPS} are needed")
        if steps > 10**7:
            raise ConfigError("sgd_time", f"/ --step gives {steps} steps, more than 10^7")
        if self.sgd_samples[-1] * self.sgd_ensemble * self.sgd_k > 10**9:
            raise ConfigError("sgd_samples", f"× --sgd-ensemble × --sgd-k draws more than 10^9 numbers per "
                              f"step, got {self.sgd_samples[-1]} × {self.sgd_ensemble} × {self.sgd_k}")

    @property
    def sgd_steps(self) -> int:
        """Steps of the SGD runs: round(sgd_time / step), cut to a multiple of the save interval."""
        steps = round(self.sgd_time / self.step)
        every = max(1, steps // SGD_SAVES)
        return steps - steps % every

    def _part_bytes(self) -> dict[str, float]:
        k = max(self.ks)
        starts = self.ensemble + PLANE_STARTS
        return {
            # saved states, the solver's stages and the Hessian of the classification
            "ensemble": 8.0 * (starts * (SAVED_TIMES + 8) * k * k * 2 + 3 * k**4),
            "escape_deltas": 8.0 * len(self.escape_deltas) * (ESCAPE_TIMES + 8) * self.escape_k**2 * 2,
            "k1_ensemble": 8.0 * 16 * self.k1_ensemble * max(self.dims),
            "sgd_ensemble": 8.0 * self.sgd_ensemble * ((SGD_SAVES + 2) * self.sgd_k**2 * len(self.sgd_samples)
                                                       + 6 * self.sgd_samples[-1] * self.sgd_k),
        }

    def estimate_bytes(self) -> float:
        return max(self._part_bytes().values())

    def size_option(self) -> str:
        parts = self._part_bytes()
        return max(parts, key=parts.get)
