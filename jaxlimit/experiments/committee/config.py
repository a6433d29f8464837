"""Options of ``jaxlimit committee``."""

from __future__ import annotations

import dataclasses

from jaxlimit.config import Config, ConfigError, choice, integer, real
from jaxlimit.experiments import options as opt

MAX_UNITS = 8
"""Largest K + M: the closed-form fluctuation matrix B costs (K+3 choose 4)(K+M)⁴ I4 evaluations per
step (limits.committee.MAX_CLOSED_LNA_UNITS)."""
MAX_LNA_UNITS = 5
"""Largest K + M with a trained second layer (--alpha-v > 0) or an --activation other than erf: their B
is a tensor Gauss–Hermite rule of 10^(K+M)·3 nodes."""
MAX_DIM = 10**7
SAVED_TIMES = 60
"""Saved times after α = 0, evenly spaced up to --alpha-max (plus the compared times)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class CommitteeConfig(Config):
    """Soft committee machines ŷ = Σ_k v_k g(λ_k) (g = --activation: erf(·/√2), max(·, 0) or the
    identity; no 1/K; second layer v fixed to 1 unless --alpha-v > 0, the teacher's v* = 1, the
    teacher has the same g) learning a teacher of M units online (a fresh x ~ N(0, I_D) each step, docs/committee.md): E students from
    random starts w ~ N(0, s² I_D), v = --init-v, simulated by the exact Markov chain of their order
    parameters (Q, R, and v when trained), against the order-parameter ODEs started from the mean start and their linear-noise
    covariance Σ(α)/D. Time is α = steps / D (this command's clock: --alpha-max, not --t-max).
    Verdict: the CLT of (Q, R) (and v) at times before the plateau's escape. Measured (erf only; they
    are derived for it and not computed for relu or linear): η_max and the asymptotic rate (v trained
    at --alpha-v when > 0); with the second layer fixed at 1, the plateau height, the escape rate λ
    and the escape times against ln D/(2λ), and for K > M the noise floor against (σ²η/2π)(L + M/√3)."""

    NAME = "committee"
    HELP = "online soft committee machines at input dimension D against the Saad–Solla ODEs and their fluctuations"
    RUNNER = "jaxlimit.experiments.committee.experiment"

    students: int = integer(2, "student units K", high=MAX_UNITS, group="model")
    teachers: int = integer(2, "teacher units M", high=MAX_UNITS, group="model")
    teacher_overlap: float = real(0.0, "teacher overlaps T = (1 − c) I + c 11ᵀ (orthonormalised teacher rows); "
                                  "c = 0: T = I; T must be positive definite", low=-1.0, high=1.0,
                                  low_open=False, group="model")
    activation: str = choice("erf", "activation g of students and teacher: erf(·/√2), relu max(·, 0) or linear "
                             "(g(u) = u); the plateau, η_max and noise-floor results are computed for erf only",
                             ("erf", "relu", "linear"), group="model")
    init_std: float = real(0.5, "standard deviation s of the students' initial weights w ~ N(0, s²)", high=10.0,
                           group="model")
    dim: int = integer(500, "input dimension D", low=10, high=MAX_DIM, group="problem")
    alpha: float = real(1.0, "SGD learning rate η (w ← w + (η/√D) Δ g'(λ) x); must be below the perfect "
                     "student's η_max", high=100.0, group="training")
    alpha_v: float = real(0.0, "learning rate η_v of the second layer (v ← v + (η_v/D) Δ g(λ)); 0: v fixed at "
                          "--init-v", low=0.0, low_open=False, high=100.0, group="training")
    init_v: float = real(1.0, "every student unit's second-layer weight v at α = 0 (the teacher's v* = 1)",
                         low=-10.0, low_open=False, high=10.0, group="model")
    noise: float = real(0.1, "standard deviation σ of the teacher's output noise", low=0.0, low_open=False,
                        high=10.0, group="training")
    alpha_max: float = real(100.0, "training time α = steps / D reached", high=1e5, group="training")
    ensemble: int = opt.ensemble(1000, "number of independent students E")
    level: float = opt.level()
    seed: int = opt.seed()
    out: str = opt.out("report-committee")

    def check(self) -> None:
        K, M, c = self.students, self.teachers, self.teacher_overlap
        if K + M > MAX_UNITS:
            raise ConfigError("students", f"+ --teachers must be at most {MAX_UNITS}, got {K} + {M}")
        if K + M > MAX_LNA_UNITS and (self.alpha_v > 0 or self.activation != "erf"):
            why = "--alpha-v > 0" if self.alpha_v > 0 else f"--activation {self.activation}"
            raise ConfigError("students", f"+ --teachers must be at most {MAX_LNA_UNITS} with {why} (the "
                              f"fluctuation quadrature has 10^(K+M) nodes), got {K} + {M}")
        if not (1 - c > 0 and 1 + (M - 1) * c > 0):
            raise ConfigError("teacher_overlap", f"= {c:g} makes T = (1 − c) I + c 11ᵀ not positive definite "
                              f"(eigenvalues {1 - c:g} and {1 + (M - 1) * c:g})")
        if self.dim <= 2 * (K + M):
            raise ConfigError("dim", f"must exceed 2 (K + M) = {2 * (K + M)}, got {self.dim}")
        if self.alpha_max * self.dim >= 2**32:
            raise ConfigError("alpha_max", f"× --dim gives {self.alpha_max * self.dim:.3g} steps, more than 2^32")
        if self.init_v == 0.0 and self.alpha_v == 0.0:
            raise ConfigError("init_v", "= 0 with --alpha-v 0 keeps the student's output at zero and its weights "
                              "fixed; give --alpha-v > 0 or --init-v ≠ 0")
        if self.ensemble < 20:
            raise ConfigError("ensemble", f"must be at least 20 for the comparison, got {self.ensemble}")

    def estimate_bytes(self) -> float:
        # the exact draw of each start's Gram matrix holds K (D − M) normals per student
        start = 8.0 * 2 * self.ensemble * self.students * self.dim
        saved = 8.0 * self.ensemble * (SAVED_TIMES + 8) * (self.students + self.teachers) ** 2 * 2
        return start + saved

    def size_option(self) -> str:
        return "dim"
