"""Ensembles of students at a stable fixed point of the order-parameter ODEs (docs/committee.md,
"After the escape" and "The noise floor on ensembles").

* :func:`canonical_order`: students are exchangeable, so after the escape each one has specialised
  to the teachers in its own order; the permutation π of the K student units maximising
  Σ_{m<M} R_{π(m) m} puts every student in the teacher's order (Q ← Q[π][:, π], R ← R[π]).
* :func:`fixed_point_ensemble`: E students started at the ODE's own fixed point (Q*, R*) of
  K = M + L units (L = 0: the perfect student, shifted by the noise), run by the exact chain, with
  the linear-noise law N(X*, Σ(α)/D) of the same start (Σ(0) = 0, Σ(α) → Σ* solving
  J Σ* + Σ* Jᵀ + B = 0).
* :func:`noise_floor_measurement`: their late-time ε_g averaged over a window against the ODE's
  fixed point ε_g(X*) (and its O(1/D) curvature shift ½ tr(∇²ε_g Σ*)/D) and against Goldt et al.'s
  ε* = (σ²η/2π)(L + M/√3).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.limits import committee as cm
from jaxlimit.stats import Gaussian, mean_estimate
from jaxlimit.stats.verdict import verdict_over_times
from jaxlimit.streams import stream_key
from jaxlimit.training import committee as tc


def canonical_order(Q, R, M: int | None = None):
    """Permute each student's units so that unit m < M is the one most aligned with teacher m:
    π maximises Σ_{m<M} R_{π(m) m} over all K! permutations (K ≤ 5). Q (..., K, K), R (..., K, M)."""
    Q, R = np.asarray(Q), np.asarray(R)
    K, M = R.shape[-2], R.shape[-1]
    if K > 5:
        raise InputError(f"canonical_order tries all K! permutations; K = {K} is too many")
    perms = np.array(list(itertools.permutations(range(K))))
    score = np.stack([sum(R[..., p[m], m] for m in range(M)) for p in perms], -1)
    best = perms[np.argmax(score, -1)]  # (..., K)
    Rc = np.take_along_axis(R, best[..., :, None], axis=-2)
    Qc = np.take_along_axis(Q, best[..., :, None], axis=-2)
    Qc = np.take_along_axis(Qc, best[..., None, :], axis=-1)
    return Qc, Rc


def fixed_point_ensemble(M: int, L: int, lr: float, noise_std: float, D: int, E: int, alphas, *, seed: int = 0,
                         lanes: int = tc.LANES, with_law: bool = True) -> dict:
    """E students of K = M + L units started at the ODE's stable fixed point with T = I_M.

    Returns the fixed point (``specialised_fixed_point``), the runs (canonically ordered), the
    observables (E, A, 1 + P) = (ε_g, Q_ik i ≤ k, R_in) and the linear-noise law at ``alphas``."""
    if D <= 2 * (2 * M + L):
        raise InputError(f"D must exceed 2 (K + M) = {2 * (2 * M + L)}, got {D}")
    fp = cm.specialised_fixed_point(M, L, lr, noise_std)
    if fp["leading_eigenvalue"] >= 0:
        raise InputError(f"the fixed point of M = {M}, L = {L} at η = {lr:g} is not stable")
    K, T = M + L, np.eye(M)
    Q0 = np.broadcast_to(fp["Q"], (E, K, K))
    R0 = np.broadcast_to(fp["R"], (E, K, M))
    runs = tc.train_order_parameters(Q0, R0, T, lr=lr, noise_std=noise_std, D=D, alphas=alphas,
                                     root=stream_key(seed, "fixed-point", M, L), lanes=lanes)
    finite = runs["finite"]
    Q, R = canonical_order(runs["Q"][finite], runs["R"][finite])
    X = np.asarray(cm.flatten(jnp.asarray(Q), jnp.asarray(R)))
    outputs = np.concatenate([runs["eps"][finite][..., None], X], axis=-1)
    law = (cm.committee_ode(fp["Q"], fp["R"], T, lr=lr, noise_std=noise_std, dim=D).predict(alphas)
           if with_law else None)
    return {"fixed_point": fp, "outputs": outputs, "law": law, "finite": finite, "K": K, "M": M}


def fixed_point_clt(ens: dict, indices, *, level: float = 0.05, seed: int = 0):
    """The CLT verdict of (Q, R) (ε_g left out: a function of them) against N(X̄(α), Σ(α)/D) at the
    time indices given (Bonferroni, each a calibrated compare_gaussian)."""
    from jaxlimit.stats.verdict import verdict_over_times

    P = ens["outputs"].shape[-1]
    return verdict_over_times(ens["outputs"][..., 1:], ens["law"].select(np.arange(1, P)), indices,
                              level=level, seed=seed)


@dataclasses.dataclass(frozen=True)
class AfterEscape:
    """The CLT at the specialised fixed point X* (K = M, T = I, σ > 0) after the plateau's escape.

    An O(1) transient decays like e^{−rα} (r = −the largest eigenvalue of J at X*), so it is below the
    fluctuations' D^{-1/2} once ln D/(2r) has passed since the last student escaped; only then is the
    ensemble N(X*, Σ*/D) (docs/committee.md, "After the escape").

    Attributes:
        fixed_point_eps: ε_g at X*.
        relaxation: ln D/(2r).
        last_escape: the latest student's escape time (None: not every student escaped).
        alpha: the compared α (None: not compared).
        reason: why it was not compared (None: compared).
        verdict: the CLT verdict of the canonically ordered (Q, R) at ``alpha`` (None: not compared).
    """

    fixed_point_eps: float
    relaxation: float
    last_escape: float | None
    alpha: float | None
    reason: str | None
    verdict: object

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "verdict"}
        if self.verdict is not None:
            out["fluctuations"] = self.verdict.as_dict()
        return out


def after_escape_clt(X, escape_times, alpha: float, *, M: int, lr: float, noise_std: float, dim: int,
                     level: float = 0.05, seed: int = 0) -> AfterEscape:
    """Students of K = M units (T = I_M) at α = ``alpha``, flat (Q, R) ``X`` (E, P), against the stationary
    law N(X*, Σ*/D) at the specialised fixed point, each student's units first put in the teachers' order
    (:func:`canonical_order`); compared only when every student escaped (``escape_times`` finite) and
    ln D/(2r) has passed since the last escape, else the reason."""
    fp = cm.specialised_fixed_point(M, 0, lr, noise_std)
    relax = math.log(dim) / (2.0 * -fp["leading_eigenvalue"])
    last = float(np.max(escape_times))
    if not np.isfinite(last):
        reason = f"{100 * np.mean(~np.isfinite(escape_times)):.0f} % of the students had not escaped by α = {alpha:g}"
        return AfterEscape(fp["eps"], relax, None, None, reason, None)
    if last + relax > alpha:
        reason = (f"the last escape (α = {last:g}) plus the relaxation ln D/(2r) = {relax:.3g} exceeds "
                  f"α = {alpha:g}")
        return AfterEscape(fp["eps"], relax, last, None, reason, None)
    Q, R = cm.unflatten(jnp.asarray(X), M, M)
    Qc, Rc = canonical_order(Q, R)
    Xc = np.asarray(cm.flatten(jnp.asarray(Qc), jnp.asarray(Rc)))
    S = cm.stationary_covariance(fp["Q"], fp["R"], np.eye(M), lr, noise_std)
    law = Gaussian(np.asarray(cm.flatten(jnp.asarray(fp["Q"]), jnp.asarray(fp["R"])))[None], (S / dim)[None],
                   times=np.array([alpha]))
    tv = verdict_over_times(Xc[:, None], law, [0], times=[alpha], level=level, seed=seed)
    return AfterEscape(fp["eps"], relax, last, alpha, None, tv)


def curvature_shift(Q, R, T, S) -> float:
    """½ tr(∇²ε_g(X) S): the O(1/D) shift of E[ε_g] by fluctuations of covariance S/D (times D)."""
    K, M = np.asarray(R).shape
    Tj = jnp.asarray(T)
    H = jax.jit(jax.hessian(lambda x: cm.generalisation_error(*cm.unflatten(x, K, M), Tj)))(
        cm.flatten(jnp.asarray(Q), jnp.asarray(R)))
    return 0.5 * float(np.sum(np.asarray(H) * np.asarray(S)))


def noise_floor_measurement(M: int, L: int, lr: float, noise_std: float, D: int, E: int, alpha_max: float, *,
                            seed: int = 0, with_law: bool = True) -> dict:
    """The ensemble's ε_g averaged over α ∈ [α_max/2, α_max] (students from the fixed point), mean
    ± SE over students, against ε_g(X*) + ½ tr(∇²ε_g Σ*)/D and against (σ²η/2π)(L + M/√3). The
    ensemble (recorded at 41 times from 0 to α_max) is returned under "ensemble" for the CLT."""
    alphas = np.linspace(0.0, alpha_max, 41)
    ens = fixed_point_ensemble(M, L, lr, noise_std, D, E, alphas, seed=seed, with_law=with_law)
    late = alphas >= alpha_max / 2
    est = mean_estimate(ens["outputs"][:, late, 0].mean(1))
    fp = ens["fixed_point"]
    S = cm.stationary_covariance(fp["Q"], fp["R"], np.eye(M), lr, noise_std)
    shift = curvature_shift(fp["Q"], fp["R"], np.eye(M), S) / D
    formula = cm.noise_floor_theory(M, L, lr, noise_std)
    ode = fp["eps"] + shift
    return {"M": M, "L": L, "lr": lr, "noise_std": noise_std, "D": D, "students": int(ens["finite"].sum()),
            "measured": est.value, "se": est.se, "ode_fixed_point": fp["eps"], "curvature_shift": shift,
            "z_ode": (est.value - ode) / est.se, "goldt_formula": formula,
            "z_formula": (est.value - formula) / est.se, "ratio_to_formula": est.value / formula,
            "ensemble": ens, "alphas": alphas}


__all__ = ["AfterEscape", "after_escape_clt", "canonical_order", "curvature_shift", "fixed_point_clt", "fixed_point_ensemble", "noise_floor_measurement"]
