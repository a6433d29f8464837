"""Options of ``jaxlimit sweep committee``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError, integer, integers, real
from jaxlimit.experiments import options as opt
from jaxlimit.experiments.committee.config import MAX_UNITS

MAX_DIM = 10**6


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepCommitteeConfig(Config):
    """For each input dimension D, E soft committee machines (K = M, 2 by default, T = I, g = erf(·/√2), no 1/K)
    learning online from w ~ N(0, s² I_D), simulated by the exact order-parameter chain and recorded
    every ≈ 0.25 in α = steps / D, against the order-parameter ODE from the mean start (which stays on
    the symmetric plateau) and its linear-noise covariance Σ(α)/D. Over the window
    α ∈ [¼, ½] · ln(D_min)/(2λ) on the plateau, before any escape: the gap of the ensemble-mean ε_g to
    the ODE (expected ∝ 1/D, with coefficient ½ tr(∇²ε_g Σ) plus an uncomputed mean shift) and the
    pathwise RMS gap (∝ D^{-1/2}), each fitted as a power of D with an interval. The escape time
    (first α with ε_g below half the plateau height): its median against ln D, slope expected
    1/(2λ). docs/committee.md states the conventions and the derivations."""

    NAME = "sweep committee"
    HELP = "soft committee machines across input dimensions D: gap rates to the ODE and plateau escape times"
    RUNNER = "jaxlimit.experiments.sweep_committee.experiment"

    students: int = integer(2, "student units K (the sweep needs K = M ≥ 2: the symmetric plateau)", high=MAX_UNITS,
                            group="model")
    teachers: int = integer(2, "teacher units M (= --students)", high=MAX_UNITS, group="model")
    dims: tuple[int, ...] = integers((250, 500, 1000, 2000),
                                     "input dimensions D (at least two, each > 2 (K + M)), comma-separated",
                                     low=10, high=MAX_DIM, min_len=2, group="problem")
    init_std: float = real(0.5, "standard deviation s of the students' initial weights w ~ N(0, s²)", high=10.0,
                           group="model")
    alpha: float = real(1.5, "SGD learning rate η (w ← w + (η/√D) Δ g'(λ) x); must be below the perfect "
                     "student's η_max", high=100.0, group="training")
    noise: float = real(0.1, "standard deviation σ of the teacher's output noise", low=0.0, low_open=False,
                        high=10.0, group="training")
    alpha_max: float = real(90.0, "training time α = steps / D reached (rounded up to whole pages of 1024 "
                            "steps)", high=1e5, group="training")
    ensemble: int = opt.ensemble(300, "number of independent students E at each D")
    level: float = opt.level()
    seed: int = opt.seed()
    out: str = opt.out("report-sweep-committee")

    def check(self) -> None:
        K, M = self.students, self.teachers
        if K != M:
            raise ConfigError("students", f"= {K} differs from --teachers {M}: the sweep measures the escape from "
                              "the symmetric plateau, which needs K = M")
        if K < 2:
            raise ConfigError("students", f"must be at least 2 for the symmetric plateau, got {K}")
        if K + M > MAX_UNITS:
            raise ConfigError("students", f"+ --teachers must be at most {MAX_UNITS}, got {K} + {M}")
        if min(self.dims) <= 2 * (K + M):
            raise ConfigError("dims", f"must each exceed 2 (K + M) = {2 * (K + M)}, got {min(self.dims)}")
        if self.alpha_max * max(self.dims) >= 2**32 - 2048:
            raise ConfigError("alpha_max", f"× the largest --dims gives {self.alpha_max * max(self.dims):.3g} "
                              "steps, more than 2^32")
        if self.ensemble < 20:
            raise ConfigError("ensemble", f"must be at least 20 for the comparison, got {self.ensemble}")

    def estimate_bytes(self) -> float:
        # one D at a time: the exact draw of each start (K (D − M) normals per student) and the records
        # every ≈ 0.25 α of (Q, R) (at most (K + M)² numbers) in float64
        start = 8.0 * 2 * self.ensemble * self.students * max(self.dims)
        records = 8.0 * self.ensemble * (4 * self.alpha_max + 8) * 2 * (self.students + self.teachers) ** 2
        return start + records

    def size_option(self) -> str:
        return "dims"
