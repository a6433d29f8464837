"""Online learning in high input dimension: the soft committee machine's order-parameter ODEs
(Saad & Solla 1995; Biehl & Schwarze 1995; Goldt et al. 2019), their linear-noise fluctuations,
and the phenomena as numbers (docs/committee.md).

Conventions (they decide every number). Inputs x ~ N(0, I_D), a fresh one each step. Teacher
y = Σ_m g(ρ_m) + σ ζ, ρ_m = w*_m·x/√D, ζ ~ N(0, 1); student ŷ = Σ_k g(λ_k), λ_k = w_k·x/√D;
g(u) = erf(u/√2); no 1/K. With second layers (the teacher's v*, default 1; the student's v,
default 1, fixed unless η_v > 0) y = Σ_m v*_m g(ρ_m) + σ ζ and ŷ = Σ_k v_k g(λ_k). SGD
w_k ← w_k + (η/√D) Δ v_k g'(λ_k) x and v_k ← v_k + (η_v/D) Δ g(λ_k), both from the same step's
values, with Δ = y − ŷ; time α = steps / D. Order parameters Q = w wᵀ/D (K×K), R = w w*ᵀ/D (K×M),
T = w* w*ᵀ/D (M×M) and v (K,). ε_g = ½ E[(ŷ − Σ_m v*_m g(ρ_m))²], the noise excluded.

With the N = K + M local fields u = (λ, ρ) ~ N(0, C), C = [[Q, R], [Rᵀ, T]], signs s_c = −1 for
students, +1 for teachers, and v_c = v_k for a student unit, v*_m for a teacher unit (so
Δ = Σ_c s_c v_c g(u_c) + σζ), the D → ∞ limit is

    dR_in/dα = η v_i Σ_c s_c v_c I3(i, K+n, c)
    dQ_ik/dα = η v_i Σ_c s_c v_c I3(i, k, c) + η v_k Σ_c s_c v_c I3(k, i, c)
               + η² v_i v_k [Σ_cd s_c s_d v_c v_d I4(i, k, c, d) + σ² J2(i, k)]
    dv_i/dα  = η_v Σ_c s_c v_c I2(i, c)                       (0 when the second layer is fixed)
    ε_g      = ½ Σ_cd s_c s_d v_c v_d I2(c, d)

(at η → 0 and η_v → 0 the flow is gradient flow on ε_g: dv/dα = −η_v ∂ε_g/∂v).

with I2(a,b) = ⟨g(u_a)g(u_b)⟩, I3(a,b,c) = ⟨g'(u_a) u_b g(u_c)⟩, I4(a,b,c,d) =
⟨g'(u_a)g'(u_b)g(u_c)g(u_d)⟩, J2(a,b) = ⟨g'(u_a)g'(u_b)⟩; for erf(·/√2) they have the closed
forms of :func:`erf_integrals` (THEORY §8), for any other g :class:`GaussHermite` computes them
by tensor Gauss–Hermite quadrature in ≤ 4 dimensions with an error estimate.

Fluctuations. At finite D the flattened order parameters X = (Q_ik for i ≤ k, R_in, and v_i when
the second layer is trained) satisfy
√D (X − X̄(α)) → N(0, Σ(α)) with the linear-noise (system-size) equation

    dΣ/dα = J Σ + Σ Jᵀ + B,   J = ∂F/∂X (jax.jacfwd of the drift F),
    B = Cov[h],  h = D·(one step's increment of X) = (a_i ρ_n, a_i λ_k + a_k λ_i + a_i a_k, η_v Δ g(λ_i)),
    a_i = η Δ v_i g'(λ_i)

at leading order (|x|²/D → 1). B is a Gaussian expectation over the N fields and ζ: by a tensor
Gauss–Hermite rule (:func:`tensor_increment_moments`) for K + M ≤ 4, another g or v trained, and
otherwise in closed form but for one smooth integral in t (:func:`closed_increment_moments`). The expansion fails
where the drift has an unstable direction that the fluctuations must leave by (the plateau's
escape): there Σ grows like e^{2λα} and the escape time is random on the scale ln D / λ.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.limits._ode import check_times, solve_ode
from jaxlimit.limits.base import Limit
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.validation import require_real

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
MAX_UNITS = 64
"""Largest K + M: the closed-form I4 tensor has K² (K + M)² entries."""
LNA_NODES = 10
"""Gauss–Hermite nodes per field dimension of the tensor rule of the fluctuation matrix B (exact for
polynomials of degree 19 per dimension; erf and g' are not polynomials, and the rule converges slowly
to the closed form of :func:`closed_increment_moments`)."""
MAX_LNA_NODES = 2_000_000
"""The tensor rule of B has LNA_NODES^(K+M) · 3 nodes; larger K + M is refused where B needs it."""
TENSOR_LNA_UNITS = 4
"""B of g = erf(·/√2) with v fixed is the tensor rule up to this K + M (today's numbers to the bit) and
the closed form of :func:`closed_increment_moments` above it."""
MAX_CLOSED_LNA_UNITS = 8
"""Largest K + M of :func:`closed_increment_moments` (its cost grows like (K+3 choose 4) (K+M)⁴)."""
LNA_T_NODES = 8
"""Gauss–Legendre nodes in the replica path t ∈ [0, 1] of ⟨Δ⁴ g'g'g'g'⟩, the one part of the closed
form B that is an integral (of an analytic function of t; the error is estimated against half of them)."""


# --------------------------------------------------------------------------
# g = erf(u/√2) and the closed-form Gaussian integrals
# --------------------------------------------------------------------------

def erf_g(u):
    """g(u) = erf(u/√2)."""
    return jax.scipy.special.erf(u / _SQRT2)


def erf_g_prime(u):
    """g'(u) = √(2/π) e^{−u²/2}."""
    return _SQRT_2_OVER_PI * jnp.exp(-0.5 * u * u)


def i2_closed(C):
    """I2(a,b) = (2/π) arcsin(C_ab / √((1+C_aa)(1+C_bb))), shape (N, N)."""
    d = 1.0 + jnp.diagonal(C)
    return (2.0 / jnp.pi) * jnp.arcsin(C / jnp.sqrt(d[:, None] * d[None, :]))


def i3_closed(C):
    """I3(a,b,c) = ⟨g'(u_a) u_b g(u_c)⟩ = (2/π)(C_bc(1+C_aa) − C_ab C_ac) / ((1+C_aa)√Λ3),
    Λ3 = (1+C_aa)(1+C_cc) − C_ac²; shape (N, N, N)."""
    d = 1.0 + jnp.diagonal(C)
    caa = d[:, None, None]
    lam3 = caa * d[None, None, :] - C[:, None, :] ** 2
    num = C[None, :, :] * caa - C[:, :, None] * C[:, None, :]
    return (2.0 / jnp.pi) * num / (caa * jnp.sqrt(lam3))


def i4_closed(C):
    """I4(a,b,c,d) = ⟨g'(u_a)g'(u_b)g(u_c)g(u_d)⟩ = (4/π²) Λ4^{-1/2} arcsin(Λ0/√(Λ1Λ2)) (THEORY §8);
    shape (N, N, N, N)."""
    return _i4(1.0 + jnp.diagonal(C), C)


def _i4(d, C):
    """I4 of the 4-tuples of fields whose variances are d − 1 and whose covariances (between
    different members of the tuple, the same field twice included) are C: i4_closed is d = 1 + diag C;
    the replica path of :func:`_fourth_moment` gives the same field in two replicas a covariance ≠ its
    variance."""
    A = d[:, None, None, None]
    Bb = d[None, :, None, None]
    cab = C[:, :, None, None]
    cac = C[:, None, :, None]
    cad = C[:, None, None, :]
    cbc = C[None, :, :, None]
    cbd = C[None, :, None, :]
    ccd = C[None, None, :, :]
    lam4 = A * Bb - cab**2
    lam0 = lam4 * ccd - cbc * cbd * A - cac * cad * Bb + cab * cac * cbd + cab * cad * cbc
    lam1 = lam4 * d[None, None, :, None] - cbc**2 * A - cac**2 * Bb + 2.0 * cab * cac * cbc
    lam2 = lam4 * d[None, None, None, :] - cbd**2 * A - cad**2 * Bb + 2.0 * cab * cad * cbd
    return (4.0 / jnp.pi**2) / jnp.sqrt(lam4) * jnp.arcsin(lam0 / jnp.sqrt(lam1 * lam2))


def j2_closed(C):
    """J2(a,b) = ⟨g'(u_a)g'(u_b)⟩ = (2/π)((1+C_aa)(1+C_bb) − C_ab²)^{-1/2}, shape (N, N)."""
    d = 1.0 + jnp.diagonal(C)
    return (2.0 / jnp.pi) / jnp.sqrt(d[:, None] * d[None, :] - C**2)


class ErfIntegrals(eqx.Module):
    """The closed forms of I2, I3, I4, J2 for g = erf(·/√2) (exact; no error estimate needed)."""

    # static: solver args crossing diffrax's jit; the name selects the compiled code
    name: str = eqx.field(static=True, default="erf")

    def g(self, u):
        return erf_g(u)

    def g_prime(self, u):
        return erf_g_prime(u)

    def i2(self, C):
        return i2_closed(C)

    def i3(self, C):
        return i3_closed(C)

    def i4(self, C):
        return i4_closed(C)

    def j2(self, C):
        return j2_closed(C)


def erf_integrals() -> ErfIntegrals:
    """The closed-form integrals of g = erf(·/√2)."""
    return ErfIntegrals()


class LinearIntegrals(eqx.Module):
    """The closed forms for g(u) = u (a linear committee, ŷ = Σ_k λ_k): g' = 1, so
    I2(a,b) = C_ab, I3(a,b,c) = ⟨u_b u_c⟩ = C_bc, I4(a,b,c,d) = ⟨u_c u_d⟩ = C_cd, J2(a,b) = 1."""

    # static: solver args crossing diffrax's jit; the name selects the compiled code
    name: str = eqx.field(static=True, default="linear")

    def g(self, u):
        return u

    def g_prime(self, u):
        return jnp.ones_like(u)

    def i2(self, C):
        return C

    def i3(self, C):
        N = C.shape[-1]
        return jnp.broadcast_to(C[None, :, :], (N, N, N))

    def i4(self, C):
        N = C.shape[-1]
        return jnp.broadcast_to(C[None, None, :, :], (N, N, N, N))

    def j2(self, C):
        return jnp.ones_like(C)


def linear_integrals() -> LinearIntegrals:
    """The closed-form integrals of g(u) = u (pass as ``integrals=`` to :func:`committee_ode`)."""
    return LinearIntegrals()


# --------------------------------------------------------------------------
# g = max(u, 0): Gaussian moments of products of u^p 1{u > 0} by Stein's lemma
# --------------------------------------------------------------------------

RELU_NODES = 48
"""Gauss–Legendre nodes of the one-dimensional Plackett integral of the 4-d orthant probability
(in s, t = 1 − s²; docs/committee.md states its measured accuracy)."""

# A factor of a Gaussian moment is (indicator, power): u^power · 1{u > 0} if indicator else u^power.
_ONE, _STEP, _RELU, _LIN = (False, 0), (True, 0), (True, 1), (False, 1)


def _merge(a, b):
    """The factor of the product of two factors of the same field."""
    return (a[0] or b[0], a[1] + b[1])


def _condition(S, j: int):
    """Covariance of the other fields given u_j = 0 (field j removed)."""
    keep = [i for i in range(S.shape[0]) if i != j]
    # written entry by entry (n ≤ 4): static slices compile much faster than gathers under jacfwd
    return _matrix([[S[i, k] - S[i, j] * S[k, j] / S[j, j] for k in keep] for i in keep], S.dtype)


def _matrix(rows, dtype):
    if not rows:
        return jnp.zeros((0, 0), dtype)
    return jnp.stack([jnp.stack(r) for r in rows])


def _asin_corr(S, i: int, j: int):
    return jnp.arcsin(jnp.clip(S[i, j] / jnp.sqrt(S[i, i] * S[j, j]), -1.0, 1.0))


def _plackett_nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights of ∫_0^1 ds."""
    x, w = np.polynomial.legendre.leggauss(int(n))
    return 0.5 * (x + 1.0), 0.5 * w


_MATCHINGS = np.asarray([[0, 1, 2, 3], [0, 2, 1, 3], [0, 3, 1, 2]])
"""The three pairings {(p0, p1), (p2, p3)} of four fields."""


def _orthant4(S, nodes: int):
    """P(u > 0) for u ~ N(0, S), S 4×4 with non-collinear fields, by Plackett's identity
    ∂P/∂ρ_ab = φ₂(0, 0; ρ_ab) P(u_c > 0, u_d > 0 | u_a = u_b = 0). The fields are paired
    {(0, 1), (2, 3)} (reordered to the pairing with the largest Σ −ln(1 − ρ²) of its two pairs, so
    that a near-collinear pair, a student next to its teacher, is kept whole) and the path
    ρ(t) = ρ⁰ + t (ρ − ρ⁰) runs from ρ⁰, the pairs' own correlations and zero across them
    (P = P₂(ρ01) P₂(ρ23), P₂(r) = 1/4 + arcsin r/(2π)), changing only the four cross pairs:

        P = P₂(ρ01) P₂(ρ23) + ∫_0^1 Σ_cross ρ_ab / (2π √(1 − t² ρ_ab²)) P₂(ρ_cd·ab(t)) dt,

    ρ_cd·ab(t) the partial correlation of the other two given a, b (a 2×2 Schur complement). ρ(t) is a convex combination of correlation matrices (positive definite for t < 1).
    Integrated in s, t = 1 − s² (which removes the 1/√(1 − t) end singularity should a cross pair
    be near-collinear too), by ``nodes``-point Gauss–Legendre."""
    d = jnp.sqrt(jnp.diagonal(S))
    rho = S / (d[:, None] * d[None, :])
    strength = lambda r: -jnp.log1p(-jnp.minimum(r * r, 1.0 - 1e-300))  # noqa: E731
    m = jnp.asarray(_MATCHINGS)
    score = jnp.stack([strength(rho[p[0], p[1]]) + strength(rho[p[2], p[3]]) for p in _MATCHINGS])
    perm = m[jnp.argmax(score)]
    rho = rho[perm][:, perm]
    block = jnp.asarray([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], S.dtype)
    rho0 = rho * block
    cross = rho - rho0
    p2 = lambda r: 0.25 + jnp.arcsin(jnp.clip(r, -1.0, 1.0)) / (2 * jnp.pi)  # noqa: E731
    s, w = _plackett_nodes(nodes)
    t = 1.0 - jnp.asarray(s, S.dtype) ** 2
    pairs = [(0, 2, 1, 3), (0, 3, 1, 2), (1, 2, 0, 3), (1, 3, 0, 2)]

    def integrand(tt):
        r = rho0 + tt * cross
        total = 0.0
        for a, b, c, e in pairs:
            # the covariance of (u_c, u_e) given (u_a, u_b): a Schur complement with an explicit 2×2 inverse
            det = 1.0 - r[a, b] ** 2
            cond = lambda i, k: r[i, k] - (r[i, a] * r[k, a] + r[i, b] * r[k, b]  # noqa: E731
                                           - r[a, b] * (r[i, a] * r[k, b] + r[i, b] * r[k, a])) / det
            # (clipped: rounding can leave a near-zero conditional variance negative)
            partial = cond(c, e) / jnp.sqrt(jnp.maximum(cond(c, c) * cond(e, e), 1e-300))
            total = total + cross[a, b] / (2 * jnp.pi * jnp.sqrt(1.0 - (tt * cross[a, b]) ** 2)) * p2(partial)
        return total

    vals = jax.vmap(integrand)(t)
    return p2(rho[0, 1]) * p2(rho[2, 3]) + jnp.sum(jnp.asarray(w, S.dtype) * 2.0 * jnp.asarray(s, S.dtype) * vals)


def _orthant(S, nodes: int):
    """P(u > 0) for u ~ N(0, S) of n ≤ 4 non-collinear fields: 1, 1/2, 1/4 + arcsin ρ/(2π),
    1/8 + Σ_{i<j} arcsin ρ_ij/(4π) (Sheppard), Plackett's integral for n = 4."""
    n = S.shape[0]
    if n == 0:
        return jnp.asarray(1.0, S.dtype)
    if n == 1:
        return jnp.asarray(0.5, S.dtype)
    if n == 2:
        return 0.25 + _asin_corr(S, 0, 1) / (2 * jnp.pi)
    if n == 3:
        return 0.125 + (_asin_corr(S, 0, 1) + _asin_corr(S, 0, 2) + _asin_corr(S, 1, 2)) / (4 * jnp.pi)
    return _orthant4(S, nodes)


def relu_moment(S, factors: tuple, nodes: int = RELU_NODES):
    """E[Π_f u_f^{p_f} 1{u_f > 0}^{ι_f}] for u ~ N(0, S), one factor (ι_f, p_f) per field (fields
    distinct and non-collinear; merge repeated fields first with :func:`_merge`). Recursion on the
    powers by Stein's lemma, E[u_f H(u)] = Σ_j S_fj E[∂_j H], with ∂(u^q 1{u>0}) = q u^{q−1} 1{u>0}
    for q ≥ 1, ∂ 1{u>0} = δ(u) (E[δ(u_j) H] = E[H | u_j = 0] / √(2π S_jj)), ∂ 1 = 0, down to an
    orthant probability of ≤ 4 fields (:func:`_orthant`). Exact but for Plackett's integral."""
    factors = tuple(factors)
    keep = [i for i, f in enumerate(factors) if f != _ONE]
    if len(keep) < len(factors):
        if not keep:
            return jnp.asarray(1.0, S.dtype)
        return relu_moment(_matrix([[S[i, k] for k in keep] for i in keep], S.dtype), tuple(factors[i] for i in keep),
                           nodes)
    f = next((i for i, fac in enumerate(factors) if fac[1] > 0), None)
    if f is None:
        return _orthant(S, nodes)
    rest = list(factors)
    rest[f] = (factors[f][0], factors[f][1] - 1)
    total = 0.0
    for j, (ind, p) in enumerate(rest):
        if p > 0:  # ∂ u^p 1^ι = p u^{p−1} 1^ι
            d = list(rest)
            d[j] = (ind, p - 1)
            total = total + S[f, j] * p * relu_moment(S, tuple(d), nodes)
        elif ind:  # ∂ 1{u > 0} = δ(u): condition on u_j = 0
            cond = tuple(rest[i] for i in range(len(rest)) if i != j)
            total = total + S[f, j] / jnp.sqrt(2 * jnp.pi * S[j, j]) * relu_moment(_condition(S, j), cond, nodes)
    return total


def _moment_tensor(C, slots: tuple, nodes: int):
    """T[a, b, …] = E[Π_r slot_r(u_{a_r})], shape (N,)*len(slots): every index tuple's repeated fields
    merged (u_a 1{u_a>0} 1{u_a>0} = u_a 1{u_a>0}, …), then one vmapped :func:`relu_moment` per
    merged pattern (a static grouping: the same compiled code whatever C)."""
    N = C.shape[-1]
    r = len(slots)
    idx = np.stack(np.meshgrid(*([np.arange(N)] * r), indexing="ij"), axis=-1).reshape(-1, r)
    groups: dict = {}
    for row, ix in enumerate(idx):
        fields, facs = [], []
        for a, slot in zip(ix, slots):
            if a in fields:
                k = fields.index(a)
                facs[k] = _merge(facs[k], slot)
            else:
                fields.append(a)
                facs.append(slot)
        # the moment is symmetric under permuting (field, factor) pairs: sorted by factor, the
        # patterns of a tensor are few (I4: six), and so are the compiled recursions
        order = sorted(range(len(facs)), key=lambda i: facs[i])
        key = tuple(facs[i] for i in order)
        groups.setdefault(key, ([], []))
        groups[key][0].append(row)
        groups[key][1].append([fields[i] for i in order])
    out = jnp.zeros(len(idx), C.dtype)
    for facs, (rows, fields) in groups.items():
        f = jnp.asarray(np.asarray(fields))
        sub = C[f[:, :, None], f[:, None, :]]
        vals = jax.vmap(lambda S: relu_moment(S, facs, nodes))(sub)
        out = out.at[jnp.asarray(rows)].set(vals)
    return out.reshape((N,) * r)


class ReluIntegrals(eqx.Module):
    """I2, I3, I4, J2 of g(u) = max(u, 0), g'(u) = 1{u > 0}, from Stein's lemma (:func:`relu_moment`).
    With ρ = C_ab/√(C_aa C_bb), θ = arccos ρ and a, b, c distinct fields:

        I2(a,b) = √(C_aa C_bb)/(2π) (sin θ + (π − θ) cos θ)      (the degree-1 arc-cosine kernel),
        J2(a,b) = 1/4 + arcsin(ρ_ab)/(2π),
        I3(a,b,c) = E[1{u_a>0} u_b g(u_c)] = C_ab √(C_aa C_cc − C_ac²)/(2π C_aa) + C_bc J2(a,c),
        I4(a,b,c,d) = C_ca E[δ(u_a) 1_b 1_c g_d] + C_cb E[1_a δ(u_b) 1_c g_d] + C_cc E[1_a 1_b δ(u_c) g_d]
                      + C_cd P(u_a, u_b, u_c, u_d > 0),

    the δ terms elementary (conditional Gaussians of three fields, Stein once more), the 4-d orthant
    probability by Plackett's one-dimensional integral (:func:`_orthant4`, ``nodes`` Gauss–Legendre
    points). Repeated indices are the products of one field's factors (I2(a,a) = C_aa/2,
    I3(a,b,a) = C_ab/2, J2(a,a) = 1/2, …), exact. Distinct fields must not be collinear (C of the
    distinct fields non-singular): the perfect student λ_k = ρ_k is excluded."""

    nodes: int = eqx.field(static=True, default=RELU_NODES)
    # static: solver args crossing diffrax's jit; the name selects the compiled code
    name: str = eqx.field(static=True, default="relu")

    def g(self, u):
        return jnp.maximum(u, 0.0)

    def g_prime(self, u):
        return (u > 0).astype(jnp.result_type(u, jnp.float32))

    def i2(self, C):
        return _moment_tensor(C, (_RELU, _RELU), self.nodes)

    def i3(self, C):
        return _moment_tensor(C, (_STEP, _LIN, _RELU), self.nodes)

    def i4(self, C):
        return _moment_tensor(C, (_STEP, _STEP, _RELU, _RELU), self.nodes)

    def j2(self, C):
        return _moment_tensor(C, (_STEP, _STEP), self.nodes)


    def error(self, C) -> dict[str, float]:
        """Estimated absolute error of each integral at C: I2, I3, J2 are exact (0); I4's is
        max |I4(nodes) − I4(nodes // 2)| (Plackett's integral at half the nodes, an overestimate)."""
        half = ReluIntegrals(max(4, self.nodes // 2))
        diff = jax.jit(lambda C: jnp.max(jnp.abs(self.i4(C) - half.i4(C))))(C)
        return {"i2": 0.0, "i3": 0.0, "j2": 0.0, "i4": float(diff)}


def relu_integrals(nodes: int = RELU_NODES) -> ReluIntegrals:
    """The integrals of g(u) = max(u, 0) (pass as ``integrals=`` to :func:`committee_ode`); ``nodes``
    Gauss–Legendre points for the 4-d orthant probability inside I4."""
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or not 4 <= nodes <= 512:
        raise InputError(f"nodes must be an integer in [4, 512], got {nodes!r}")
    return ReluIntegrals(int(nodes))


ACTIVATIONS = ("erf", "relu", "linear")
"""The activations with closed-form integrals: erf(·/√2), max(u, 0) and u."""


def activation_integrals(name: str):
    """The integrals object of a named activation (:data:`ACTIVATIONS`)."""
    table = {"erf": erf_integrals, "relu": relu_integrals, "linear": linear_integrals}
    if name not in table:
        raise InputError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return table[name]()


# --------------------------------------------------------------------------
# Gauss–Hermite quadrature for any g
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _hermite_rule(n: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor rule for E[f(z)], z ~ N(0, I_dims): nodes (n^dims, dims), weights (n^dims,)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    grids = np.meshgrid(*([x] * dims), indexing="ij")
    wgrids = np.meshgrid(*([w] * dims), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=-1)
    weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=-1), axis=-1)
    return nodes, weights


def _psd_factor(S):
    """L with L Lᵀ = S for a symmetric PSD S (eigh; singular S allowed, unlike Cholesky)."""
    lam, V = jnp.linalg.eigh(0.5 * (S + S.T))
    return V * jnp.sqrt(jnp.clip(lam, 0.0))[None, :]


def gaussian_expectation(f: Callable, S, n: int):
    """E[f(u)] for u ~ N(0, S) (S of size ≤ a few) by the n-point tensor Gauss–Hermite rule."""
    nodes, weights = _hermite_rule(int(n), S.shape[0])
    u = jnp.asarray(nodes, S.dtype) @ _psd_factor(S).T
    vals = jax.vmap(f)(u)
    return jnp.tensordot(jnp.asarray(weights, S.dtype), vals, axes=1)


class GaussHermite(eqx.Module):
    """I2, I3, I4, J2 of any smooth g by tensor Gauss–Hermite quadrature: each entry integrates
    over the 2, 3 or 4 fields it involves, u = L z with L L^T the sub-covariance (an eigenvalue
    factor, so repeated indices are fine). :meth:`error` estimates the error as the largest
    difference between the ``nodes``- and ``nodes − 4``-point rules (the smaller rule's error,
    an overestimate of the larger's for a converging rule)."""

    # static: self of a filter_jit method and a solver arg; g, g' and nodes select the compiled code
    g_fn: Callable = eqx.field(static=True)
    g_prime_fn: Callable = eqx.field(static=True)
    nodes: int = eqx.field(static=True, default=12)
    name: str = eqx.field(static=True, default="quadrature")

    def g(self, u):
        return self.g_fn(u)

    def g_prime(self, u):
        return self.g_prime_fn(u)

    @eqx.filter_jit
    def _tensor(self, C, order: tuple[str, ...], n: int):
        N = C.shape[0]
        r = len(order)
        idx = np.stack(np.meshgrid(*([np.arange(N)] * r), indexing="ij"), axis=-1).reshape(-1, r)
        fns = {"g": self.g_fn, "p": self.g_prime_fn, "u": lambda u: u}

        def one(ix):
            S = C[ix][:, ix]
            return gaussian_expectation(lambda u: jnp.prod(jnp.stack([fns[o](u[j]) for j, o in enumerate(order)])),
                                        S, n)

        return jax.lax.map(one, jnp.asarray(idx), batch_size=8).reshape((N,) * r)

    def i2(self, C, n=None):
        return self._tensor(C, ("g", "g"), n or self.nodes)

    def i3(self, C, n=None):
        return self._tensor(C, ("p", "u", "g"), n or self.nodes)

    def i4(self, C, n=None):
        return self._tensor(C, ("p", "p", "g", "g"), n or self.nodes)

    def j2(self, C, n=None):
        return self._tensor(C, ("p", "p"), n or self.nodes)

    def error(self, C) -> dict[str, float]:
        """Estimated absolute error of each integral at C: max |rule(n) − rule(n − 4)|."""
        out = {}
        for name in ("i2", "i3", "i4", "j2"):
            f = getattr(self, name)
            out[name] = float(jnp.max(jnp.abs(f(C) - f(C, self.nodes - 4))))
        return out


def quadrature_integrals(g: Callable, g_prime: Callable | None = None, *, nodes: int = 12) -> GaussHermite:
    """I2, I3, I4, J2 of the activation ``g`` (g' by ``jax.grad`` unless given) by quadrature."""
    if not callable(g):
        raise InputError(f"g must be a callable, got {g!r}")
    if not 6 <= int(nodes) <= 40:
        raise InputError(f"nodes must lie in [6, 40], got {nodes}")
    gp = g_prime if g_prime is not None else _elementwise_grad(g)
    return GaussHermite(g, gp, int(nodes))


def _elementwise_grad(g):
    return jnp.vectorize(jax.grad(g))


# --------------------------------------------------------------------------
# The drift
# --------------------------------------------------------------------------

def field_covariance(Q, R, T):
    """C = [[Q, R], [Rᵀ, T]], the covariance of the local fields (λ, ρ)."""
    return jnp.block([[Q, R], [R.T, T]])


def _signs(K: int, M: int, dtype):
    return jnp.concatenate([-jnp.ones(K, dtype), jnp.ones(M, dtype)])


def _second_layers(K: int, M: int, v, teacher_v, dtype):
    """(v (K,), s_c v_c (N,)): the student's second layer (ones when None) and the signed output
    weights of Δ = Σ_c s_c v_c g(u_c) + σζ (the teacher's v* ones when None)."""
    v = jnp.ones(K, dtype) if v is None else jnp.asarray(v, dtype)
    vt = jnp.ones(M, dtype) if teacher_v is None else jnp.asarray(teacher_v, dtype)
    return v, _signs(K, M, dtype) * jnp.concatenate([v, vt])


def drift(Q, R, T, lr: float, noise_std: float = 0.0, integrals=None, *, second_order: bool = True,
          v=None, teacher_v=None):
    """(dQ/dα, dR/dα) of the D → ∞ limit (module docstring) at second layers v (K,) and v* (M,)
    (ones when None); ``second_order=False`` drops the η² term (the η → 0 flow, divided by η when
    ``lr = 1``)."""
    integrals = ErfIntegrals() if integrals is None else integrals
    K, M = R.shape
    C = field_covariance(Q, R, T)
    v, w = _second_layers(K, M, v, teacher_v, C.dtype)
    v3 = v[:, None] * jnp.einsum("abc,c->ab", integrals.i3(C)[:K], w)  # E[Δ v_a g'(λ_a) u_b], (K, N)
    dR = lr * v3[:, K:]
    dQ = lr * (v3[:, :K] + v3[:, :K].T)
    if second_order:
        i4 = integrals.i4(C)[:K, :K]
        dQ = dQ + lr**2 * jnp.outer(v, v) * (jnp.einsum("abcd,c,d->ab", i4, w, w)
                                             + noise_std**2 * integrals.j2(C)[:K, :K])
    return dQ, dR


def second_layer_drift(Q, R, T, v, lr_v: float, teacher_v=None, integrals=None):
    """dv_i/dα = η_v E[Δ g(λ_i)] = η_v Σ_c s_c v_c I2(i, c) (= −η_v ∂ε_g/∂v_i), shape (K,)."""
    integrals = ErfIntegrals() if integrals is None else integrals
    K, M = R.shape
    C = field_covariance(Q, R, T)
    _, w = _second_layers(K, M, v, teacher_v, C.dtype)
    return lr_v * (integrals.i2(C)[:K] @ w)


def generalisation_error(Q, R, T, integrals=None, *, v=None, teacher_v=None):
    """ε_g = ½ Σ_cd s_c s_d v_c v_d I2(c, d) (the noise excluded; v, v* ones when None)."""
    integrals = ErfIntegrals() if integrals is None else integrals
    K, M = R.shape
    C = field_covariance(Q, R, T)
    _, w = _second_layers(K, M, v, teacher_v, C.dtype)
    return 0.5 * w @ integrals.i2(C) @ w


# Flat coordinates X = (Q_ik for i ≤ k, R_in row-major, then v_i when the second layer is trained):
# the state of the fluctuation equation. Functions of X take ``lr_v``: None when the second layer
# is fixed (X has no v; ``v`` gives its value, ones when None), a number η_v ≥ 0 when v is in X.

def flatten(Q, R, v=None):
    """X = (Q_ik, i ≤ k, row-major; R_in row-major; v_i if ``v`` is given)."""
    iu = np.triu_indices(Q.shape[-1])
    parts = [Q[..., iu[0], iu[1]], R.reshape(*R.shape[:-2], -1)]
    return jnp.concatenate(parts if v is None else [*parts, v], axis=-1)


def unflatten(X, K: int, M: int, *, second_layer: bool = False):
    """The inverse of :func:`flatten`: (Q (…, K, K) symmetric, R (…, K, M)), and v (…, K) last
    when ``second_layer``."""
    iu = np.triu_indices(K)
    nq = len(iu[0])
    q = X[..., :nq]
    Q = jnp.zeros((*X.shape[:-1], K, K), X.dtype).at[..., iu[0], iu[1]].set(q).at[..., iu[1], iu[0]].set(q)
    R = X[..., nq:nq + K * M].reshape(*X.shape[:-1], K, M)
    return (Q, R, X[..., nq + K * M:]) if second_layer else (Q, R)


def observable_names(K: int, M: int, *, second_layer: bool = False) -> list[str]:
    """Names of the coordinates of :meth:`CommitteeODE.predict`: eps_g, then X."""
    iu = np.triu_indices(K)
    return (["eps_g"] + [f"Q{i}{k}" for i, k in zip(*iu)]
            + [f"R{i}{n}" for i in range(K) for n in range(M)]
            + ([f"v{i}" for i in range(K)] if second_layer else []))


def flat_drift(X, T, lr, noise_std, integrals=None, K=None, *, v=None, teacher_v=None, lr_v=None):
    """F(X), the drift in flat coordinates (``lr_v`` None: v fixed at ``v``; else v in X)."""
    M = T.shape[0]
    K = K if K is not None else _k_from(X.shape[-1], M, lr_v is not None)
    if lr_v is None:
        Q, R = unflatten(X, K, M)
        return flatten(*drift(Q, R, T, lr, noise_std, integrals, v=v, teacher_v=teacher_v))
    Q, R, v = unflatten(X, K, M, second_layer=True)
    dQ, dR = drift(Q, R, T, lr, noise_std, integrals, v=v, teacher_v=teacher_v)
    return flatten(dQ, dR, second_layer_drift(Q, R, T, v, lr_v, teacher_v, integrals))


def flat_generalisation_error(X, T, K: int, integrals=None, *, v=None, teacher_v=None,
                              second_layer: bool = False):
    """ε_g of the flat X (v from X when ``second_layer``, else ``v``)."""
    M = T.shape[0]
    if second_layer:
        Q, R, v = unflatten(X, K, M, second_layer=True)
    else:
        Q, R = unflatten(X, K, M)
    return generalisation_error(Q, R, T, integrals, v=v, teacher_v=teacher_v)


def _k_from(p: int, M: int, second_layer: bool = False) -> int:
    # p = K(K+1)/2 + K M (+ K)
    b = 2 * M + 1 + 2 * int(second_layer)
    return int(round((-b + math.sqrt(b * b + 8 * p)) / 2))


def increment_moments(X, T, lr: float, noise_std: float, integrals=None, nodes: int = LNA_NODES, *, v=None,
                      teacher_v=None, lr_v=None):
    """(mean, covariance) of h = D · (one SGD step's increment of X) at leading order in 1/D
    (|x|²/D = 1): h_R(in) = a_i ρ_n, h_Q(ik) = a_i λ_k + a_k λ_i + a_i a_k, a_i = η Δ v_i g'(λ_i), and
    h_v(i) = η_v Δ g(λ_i) when v is in X (``lr_v`` not None). The mean is the drift; the covariance is
    B of the fluctuation equation. By :func:`tensor_increment_moments` (``nodes`` per field) where
    :func:`lna_tensor_rule` says so, else by :func:`closed_increment_moments`."""
    M = T.shape[0]
    trained = lr_v is not None
    if not lna_tensor_rule(_k_from(X.shape[-1], M, trained), M, integrals, second_layer=trained):
        return closed_increment_moments(X, T, lr, noise_std, v=v, teacher_v=teacher_v)
    return tensor_increment_moments(X, T, lr, noise_std, integrals, nodes, v=v, teacher_v=teacher_v, lr_v=lr_v)


def tensor_increment_moments(X, T, lr: float, noise_std: float, integrals=None, nodes: int = LNA_NODES, *,
                             v=None, teacher_v=None, lr_v=None):
    """:func:`increment_moments` by a tensor Gauss–Hermite rule of ``nodes`` per field over the N
    fields and 3 nodes in ζ (exact in ζ); any g, v trained or not. Its error decays slowly in
    ``nodes`` (erf and the Gaussian g' are far from polynomials over the rule's range)."""
    integrals = ErfIntegrals() if integrals is None else integrals
    M = T.shape[0]
    trained = lr_v is not None
    K = _k_from(X.shape[-1], M, trained)
    if trained:
        Q, R, v = unflatten(X, K, M, second_layer=True)
    else:
        Q, R = unflatten(X, K, M)
    C = field_covariance(Q, R, T)
    N = K + M
    nodes_z, w_z = _hermite_rule(int(nodes), N)
    zeta, w_zeta = np.polynomial.hermite_e.hermegauss(3)
    w_zeta = w_zeta / w_zeta.sum()
    u = jnp.asarray(nodes_z, C.dtype) @ _psd_factor(C).T  # (n^N, N)
    v, w = _second_layers(K, M, v, teacher_v, C.dtype)
    iu = np.triu_indices(K)
    g = integrals.g(u)
    base = (g * w).sum(-1)  # Σ_c s_c v_c g(u_c), (n^N,)
    gp = v * integrals.g_prime(u[:, :K])  # v_k g'(λ_k), (n^N, K)
    lam, rho = u[:, :K], u[:, K:]
    hs, ws = [], []
    for zv, wv in zip(zeta, w_zeta):
        delta = base + noise_std * zv
        a = lr * delta[:, None] * gp  # (n, K)
        hR = (a[:, :, None] * rho[:, None, :]).reshape(len(u), -1)
        hQ = a[:, :, None] * lam[:, None, :]
        hQ = hQ + jnp.swapaxes(hQ, 1, 2) + a[:, :, None] * a[:, None, :]
        parts = [hQ[:, iu[0], iu[1]], hR]
        if trained:
            parts.append(lr_v * delta[:, None] * g[:, :K])
        hs.append(jnp.concatenate(parts, axis=-1))
        ws.append(jnp.asarray(w_z * wv, C.dtype))
    h = jnp.concatenate(hs)
    w = jnp.concatenate(ws)
    mean = w @ h
    second = jnp.einsum("n,np,nq->pq", w, h, h)
    return mean, second - jnp.outer(mean, mean)


def lna_tensor_rule(K: int, M: int, integrals=None, *, second_layer: bool = False) -> bool:
    """Whether B at K students and M teachers is the tensor Gauss–Hermite rule of :func:`increment_moments`
    (K + M ≤ TENSOR_LNA_UNITS, a g other than erf(·/√2), or the second layer trained) rather than the
    closed form of :func:`closed_increment_moments`."""
    erf = integrals is None or isinstance(integrals, ErfIntegrals)
    return K + M <= TENSOR_LNA_UNITS or not erf or second_layer


@functools.lru_cache(maxsize=None)
def _multisets(K: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """The multisets of r student indices: their counts (S, K) and, for every ordered r-tuple, the id of
    its multiset, shape (K,)*r."""
    import itertools

    sets = list(itertools.combinations_with_replacement(range(K), r))
    counts = np.array([np.bincount(s, minlength=K) for s in sets], np.float64)
    where = {s: j for j, s in enumerate(sets)}
    ids = np.array([where[tuple(sorted(t))] for t in itertools.product(range(K), repeat=r)]).reshape((K,) * r)
    return counts, ids


def _reweighted(C, m):
    """(Z, G) with E_C[Π_c g'(u_c)^{m_c} F(u)] = Z E_G[F(u)] for g' = √(2/π) e^{−u²/2}:
    Z = (2/π)^{Σm/2} det(I + D C)^{−1/2}, G = (C⁻¹ + D)⁻¹ = C − C D^½ (I + D^½ C D^½)⁻¹ D^½ C,
    D = diag(m) (no inverse of C: singular C allowed)."""
    h = jnp.sqrt(m)
    A = jnp.eye(C.shape[0], dtype=C.dtype) + h[:, None] * C * h[None, :]
    G = C - (C * h[None, :]) @ jnp.linalg.solve(A, h[:, None] * C)
    return (2.0 / jnp.pi) ** (0.5 * jnp.sum(m)) / jnp.sqrt(jnp.linalg.det(A)), 0.5 * (G + G.T)


def _expected_g_prime(G):
    """⟨g'(u_e)⟩ = √(2/π) (1 + G_ee)^{−1/2}, shape (N,)."""
    return _SQRT_2_OVER_PI / jnp.sqrt(1.0 + jnp.diagonal(G))


def _fourth_moment(G, w, t_nodes: int):
    """⟨S⁴⟩, S = Σ_c w_c g(u_c), u ~ N(0, G), by the replica path: four copies S_r of S whose fields
    have covariance G within a copy and t G between copies. At t = 0 they are independent and
    ⟨Π S_r⟩ = ⟨S⟩⁴ = 0 (g odd); at t = 1 it is ⟨S⁴⟩; by Price's theorem
    d⟨Π S_r⟩/dt = 6 Σ_cdef w_c w_d w_e w_f G_cd I4_t(c,d,e,f) with I4_t the closed form at variances
    G_cc and covariances t G (:func:`_i4`), an analytic function of t integrated by Gauss–Legendre."""
    x, wt = np.polynomial.legendre.leggauss(int(t_nodes))
    d = 1.0 + jnp.diagonal(G)
    wG = w[:, None] * G * w[None, :]

    def at(t):
        return jnp.einsum("cdef,cd,e,f->", _i4(d, t * G), wG, w, w)

    vals = jax.vmap(at)(jnp.asarray(0.5 * (x + 1.0), G.dtype))
    return 3.0 * jnp.dot(jnp.asarray(wt, G.dtype), vals)  # 6 · ½ (the interval [0, 1])


@functools.partial(jax.jit, static_argnames=("t_nodes",))
def closed_increment_moments(X, T, lr: float, noise_std: float, *, v=None, teacher_v=None,
                             t_nodes: int = LNA_T_NODES):
    """(mean, covariance) of h = D · (one SGD step's increment of (Q, R)) for g = erf(·/√2), v fixed, in
    closed form but for one integral in t. h is linear in the atoms A(i,a) = Δ g'(λ_i) u_a and
    P(i,k) = Δ² g'(λ_i) g'(λ_k): h_R(in) = η v_i A(i,K+n), h_Q(ik) = η v_i A(i,k) + η v_k A(k,i)
    + η² v_i v_k P(i,k), so Cov h = L ⟨atoms atomsᵀ⟩ Lᵀ − (L⟨atoms⟩)(L⟨atoms⟩)ᵀ. Each second moment
    has a product of g' factors, a Gaussian, absorbed into the measure (:func:`_reweighted`: Z, G);
    with S = Σ_c s_c v_c g(u_c) and ζ integrated (⟨Δ²⟩_ζ = S² + σ², ⟨Δ³⟩_ζ = S³ + 3σ²S,
    ⟨Δ⁴⟩_ζ = S⁴ + 6σ²S² + 3σ⁴), Stein's lemma ⟨u_a F⟩ = Σ_e G_ae ⟨∂_e F⟩ leaves closed forms:

        ⟨A(i,a) A(j,b)⟩ = Z [G_ab (⟨S²⟩ + σ²) + 2 (G W J2 W G)_ab − 2 Σ_e G_ae G_be w_e Σ_c w_c I3(e,e,c)]
        ⟨A(i,a) P(j,l)⟩ = Z Σ_e G_ae w_e ⟨g'_e⟩ 3 (w I2(G⁽ᵉ⁾) w + σ²)
        ⟨P(i,k) P(j,l)⟩ = Z (⟨S⁴⟩ + 6σ² ⟨S²⟩ + 3σ⁴)

    (W = diag(w), w_c = s_c v_c; I2, I3, J2 the closed forms at G; G⁽ᵉ⁾ = G − G_{·e} G_{e·}/(1 + G_ee), the
    measure reweighted once more by g'(u_e); g'' = −u g'), with (Z, G) of the multiset {i, j}, {i, j, l},
    {i, k, j, l} and ⟨S⁴⟩ by :func:`_fourth_moment`, the only part that is not exact. The mean is the
    drift's ⟨A⟩ = Σ_c w_c I3(i,a,c), ⟨P⟩ = Σ_cd w_c w_d I4(i,k,c,d) + σ² J2(i,k)."""
    M = T.shape[0]
    K = _k_from(X.shape[-1], M)
    Q, R = unflatten(X, K, M)
    C = field_covariance(Q, R, T)
    N = K + M
    v, w = _second_layers(K, M, v, teacher_v, C.dtype)
    s2 = noise_std**2
    pad = lambda m: jnp.concatenate([jnp.asarray(m, C.dtype), jnp.zeros(M, C.dtype)])  # noqa: E731

    def aa(m):
        Z, G = _reweighted(C, pad(m))
        y = jnp.einsum("eec,c->e", i3_closed(G), w)
        GW = G * w[None, :]
        return Z * (G * (w @ i2_closed(G) @ w + s2) + 2.0 * GW @ j2_closed(G) @ GW.T
                    - 2.0 * (GW * y[None, :]) @ G.T)

    def ap(m):
        Z, G = _reweighted(C, pad(m))
        gp = _expected_g_prime(G)
        # G⁽ᵉ⁾ for every e at once, (N, N, N)
        Ge = G[None, :, :] - G[:, :, None] * G[:, None, :] / (1.0 + jnp.diagonal(G))[:, None, None]
        q = jax.vmap(lambda H: w @ i2_closed(H) @ w)(Ge)
        return Z * (G @ (w * gp * 3.0 * (q + s2)))

    def pp(m):
        Z, G = _reweighted(C, pad(m))
        return Z * (_fourth_moment(G, w, t_nodes) + 6.0 * s2 * (w @ i2_closed(G) @ w) + 3.0 * s2**2)

    c2, id2 = _multisets(K, 2)
    c3, id3 = _multisets(K, 3)
    c4, id4 = _multisets(K, 4)
    AA = jax.vmap(aa)(jnp.asarray(c2))[id2]  # (K, K, N, N): [i, j, a, b]
    AP = jax.vmap(ap)(jnp.asarray(c3))[id3]  # (K, K, K, N): [i, j, l, a]
    PP = jax.vmap(pp)(jnp.asarray(c4))[id4]  # (K, K, K, K): [i, k, j, l]
    gram = jnp.block([[AA.transpose(0, 2, 1, 3).reshape(K * N, K * N),
                       AP.transpose(0, 3, 1, 2).reshape(K * N, K * K)],
                      [AP.transpose(1, 2, 0, 3).reshape(K * K, K * N), PP.reshape(K * K, K * K)]])
    mu = jnp.concatenate([jnp.einsum("iac,c->ia", i3_closed(C)[:K], w).reshape(-1),
                          (jnp.einsum("ikcd,c,d->ik", i4_closed(C)[:K, :K], w, w)
                           + s2 * j2_closed(C)[:K, :K]).reshape(-1)])
    L = _atom_map(K, M, lr, v)
    mean = L @ mu
    second = L @ gram @ L.T
    return mean, 0.5 * (second + second.T) - jnp.outer(mean, mean)


def _atom_map(K: int, M: int, lr, v):
    """L with h = L · (A(i,a) at i N + a, then P(i,k) at K N + i K + k) (:func:`closed_increment_moments`)."""
    N = K + M
    iu = np.triu_indices(K)
    nq = len(iu[0])
    rows, cols, which = [], [], []  # which: 0 η v_i, 1 η v_k, 2 η² v_i v_k
    for r, (i, k) in enumerate(zip(*iu)):
        rows += [r, r, r]
        cols += [i * N + k, k * N + i, K * N + i * K + k]
        which += [(0, i, k), (1, i, k), (2, i, k)]
    for i in range(K):
        for n in range(M):
            rows.append(nq + i * M + n)
            cols.append(i * N + K + n)
            which.append((0, i, i))
    kind = np.array([x[0] for x in which])
    ii = np.array([x[1] for x in which])
    kk = np.array([x[2] for x in which])
    vals = jnp.where(kind == 0, lr * v[ii], jnp.where(kind == 1, lr * v[kk], lr**2 * v[ii] * v[kk]))
    return jnp.zeros((nq + K * M, K * N + K * K), v.dtype).at[np.array(rows), np.array(cols)].add(vals)


def _ode_field(t, y, args):
    T, lr, noise_std, integrals, v, teacher_v, lr_v = args
    if lr_v is None:
        return drift(y[0], y[1], T, lr, noise_std, integrals, v=v, teacher_v=teacher_v)
    Q, R, v = y
    return (*drift(Q, R, T, lr, noise_std, integrals, v=v, teacher_v=teacher_v),
            second_layer_drift(Q, R, T, v, lr_v, teacher_v, integrals))


def _lna_field(t, state, args):
    X, S = state
    T, lr, noise_std, integrals, nodes, v, teacher_v, lr_v = args
    f = lambda x: flat_drift(x, T, lr, noise_std, integrals, v=v, teacher_v=teacher_v, lr_v=lr_v)
    F = f(X)
    J = jax.jacfwd(f)(X)
    _, B = increment_moments(X, T, lr, noise_std, integrals, nodes, v=v, teacher_v=teacher_v, lr_v=lr_v)
    return F, J @ S + S @ J.T + B


# --------------------------------------------------------------------------
# The limit object
# --------------------------------------------------------------------------

def _check_square(name, A):
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise InputError(f"{name} must be a square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise InputError(f"{name} must be finite")
    if not np.allclose(A, A.T, rtol=1e-10, atol=1e-12):
        raise InputError(f"{name} must be symmetric")
    return 0.5 * (A + A.T)


def check_order_parameters(Q0, R0, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float64 (Q0, R0, T): shapes (K,K), (K,M), (M,M); T positive definite; the field
    covariance [[Q0, R0], [R0ᵀ, T]] positive semi-definite (a Gram matrix of weights)."""
    T = _check_square("T", T)
    Q0 = _check_square("Q0", Q0)
    R0 = np.asarray(R0, dtype=np.float64)
    K, M = Q0.shape[0], T.shape[0]
    if R0.shape != (K, M):
        raise InputError(f"R0 must have shape (K, M) = ({K}, {M}) for Q0 {Q0.shape} and T {T.shape}, "
                         f"got {R0.shape}")
    if not np.all(np.isfinite(R0)):
        raise InputError("R0 must be finite")
    if K + M > MAX_UNITS:
        raise InputError(f"K + M must be at most {MAX_UNITS}, got {K + M}")
    lam_t = np.linalg.eigvalsh(T)
    if lam_t[0] <= 1e-12 * max(lam_t[-1], 1.0):
        raise InputError(f"T must be positive definite (smallest eigenvalue {lam_t[0]:.3g})")
    C = np.block([[Q0, R0], [R0.T, T]])
    lam = np.linalg.eigvalsh(C)
    if lam[0] < -1e-9 * max(lam[-1], 1.0):
        raise InputError(f"[[Q0, R0], [R0ᵀ, T]] must be positive semi-definite (the overlaps of real weights), "
                         f"smallest eigenvalue {lam[0]:.3g}")
    return Q0, R0, T


class CommitteeODE(Limit):
    """The order-parameter ODEs of the soft committee machine from (Q0, R0) with teacher T.

    Attributes:
        Q0, R0, T: float64 (K,K), (K,M), (M,M).
        lr: η; noise_std: σ (teacher's output noise).
        dim: D, the input dimension the fluctuations are scaled to (None: covariance zero).
        initial_cov: Σ(0), the covariance of √D (X(0) − X̄(0)) (zero: deterministic start).
        integrals: :class:`ErfIntegrals` (closed form) or :class:`GaussHermite`.
        v0: the student's second layer (K,) at α = 0 (fixed throughout when lr_v = 0); None: ones.
        teacher_v: the teacher's second layer v* (M,); None: ones.
        lr_v: η_v ≥ 0, the second layer's learning rate (0: fixed).

    ``predict(alphas)`` is the Gaussian of the vector (ε_g, Q_ik for i ≤ k, R_in, then v_i when
    lr_v > 0) (names: :func:`observable_names`): mean the ODE's values, covariance Σ(α)/D mapped
    through the gradient of ε_g (linear noise), zero when ``dim`` is None.
    """

    Q0: jax.Array
    R0: jax.Array
    T: jax.Array
    initial_cov: jax.Array
    lr: float
    noise_std: float = 0.0
    dim: int | None = None
    integrals: object = ErfIntegrals()
    lna_nodes: int = LNA_NODES
    v0: jax.Array | None = None
    teacher_v: jax.Array | None = None
    lr_v: float = 0.0

    @property
    def K(self) -> int:
        return int(self.R0.shape[0])

    @property
    def M(self) -> int:
        return int(self.R0.shape[1])

    @property
    def trains_second_layer(self) -> bool:
        """Whether v is an order parameter of the flow (lr_v > 0) rather than fixed at v0."""
        return self.lr_v > 0

    @property
    def names(self) -> list[str]:
        return observable_names(self.K, self.M, second_layer=self.trains_second_layer)

    def _second_layer_args(self):
        """(v fixed or None, v*, η_v or None): the second-layer arguments of the drift functions."""
        if self.trains_second_layer:
            return None, self.teacher_v, self.lr_v
        return self.v0, self.teacher_v, None

    def _trajectory(self, alphas):
        """(Q (A,K,K), R (A,K,M), v (A,K)) at ``alphas``; v is v0 at every α when it is fixed."""
        a = check_times(alphas, name="alphas")
        args = (self.T, self.lr, self.noise_std, self.integrals, *self._second_layer_args())
        if self.trains_second_layer:
            return solve_ode(_ode_field, (self.Q0, self.R0, self.v0), a, args=args,
                             steps_option="the horizon (alpha)")
        Q, R = solve_ode(_ode_field, (self.Q0, self.R0), a, args=args, steps_option="the horizon (alpha)")
        v = jnp.ones(self.K, Q.dtype) if self.v0 is None else self.v0
        return Q, R, jnp.broadcast_to(v, (Q.shape[0], self.K))

    def order_parameters(self, alphas) -> tuple[jax.Array, jax.Array]:
        """(Q (A, K, K), R (A, K, M)) at the times α = steps / D in ``alphas``."""
        Q, R, _ = self._trajectory(alphas)
        return Q, R

    def second_layer(self, alphas) -> jax.Array:
        """The student's second layer v at ``alphas``, shape (A, K) (v0 throughout when lr_v = 0)."""
        return self._trajectory(alphas)[2]

    def generalisation_error(self, alphas) -> jax.Array:
        """ε_g at ``alphas``, shape (A,)."""
        Q, R, v = self._trajectory(alphas)
        if self.trains_second_layer:
            return jax.vmap(lambda q, r, w: generalisation_error(q, r, self.T, self.integrals, v=w,
                                                                 teacher_v=self.teacher_v))(Q, R, v)
        return jax.vmap(lambda q, r: generalisation_error(q, r, self.T, self.integrals, v=self.v0,
                                                          teacher_v=self.teacher_v))(Q, R)

    def _flat_start(self):
        return flatten(self.Q0, self.R0, self.v0 if self.trains_second_layer else None)

    def fluctuations(self, alphas) -> tuple[jax.Array, jax.Array]:
        """(X̄ (A, P0), Σ (A, P0, P0)): the mean path in flat coordinates and the linear-noise
        covariance of √D (X − X̄)."""
        a = check_times(alphas, name="alphas")
        args = (self.T, self.lr, self.noise_std, self.integrals, self.lna_nodes, *self._second_layer_args())
        X, S = solve_ode(_lna_field, (self._flat_start(), self.initial_cov), a, args=args, rtol=1e-8, atol=1e-10,
                         steps_option="the horizon (alpha)")
        return X, 0.5 * (S + jnp.swapaxes(S, -1, -2))

    def predict(self, alphas) -> Gaussian:
        """N(mean, cov) of (ε_g, X) at ``alphas``: cov = G Σ Gᵀ / D, G = [∇ε_g; I] (zero without D)."""
        K, trained = self.K, self.trains_second_layer
        v, vt, _ = self._second_layer_args()
        eps = lambda x: flat_generalisation_error(x, self.T, K, self.integrals, v=v, teacher_v=vt,  # noqa: E731
                                                  second_layer=trained)
        if self.dim is None:
            Q, R, v_path = self._trajectory(alphas)
            X = flatten(Q, R, v_path if trained else None)
            mean = jnp.concatenate([jax.vmap(eps)(X)[:, None], X], axis=1)
            return Gaussian(mean, jnp.zeros((*mean.shape, mean.shape[-1]), mean.dtype))
        X, S = self.fluctuations(alphas)
        grad = jax.vmap(jax.grad(eps))(X)  # (A, P0)
        G = jnp.concatenate([grad[:, None, :], jnp.broadcast_to(jnp.eye(X.shape[1]), (X.shape[0], *S.shape[1:]))],
                            axis=1)
        cov = jnp.einsum("api,aij,aqj->apq", G, S, G) / self.dim
        mean = jnp.concatenate([jax.vmap(eps)(X)[:, None], X], axis=1)
        return Gaussian(mean, 0.5 * (cov + jnp.swapaxes(cov, -1, -2)))


def committee_ode(Q0, R0, T, *, lr: float, noise_std: float = 0.0, dim: int | None = None,
                  initial_cov=None, integrals=None, v0=None, teacher_v=None, lr_v: float = 0.0) -> CommitteeODE:
    """The soft committee machine's order-parameter ODEs (g = erf(·/√2), no 1/K; second layers
    v0 and v* ones by default, the student's fixed unless lr_v > 0).

    Args:
        Q0, R0, T: the order parameters at α = 0, shapes (K, K), (K, M), (M, M); T positive definite
            and [[Q0, R0], [R0ᵀ, T]] positive semi-definite.
        lr: η > 0.  noise_std: σ ≥ 0.
        dim: D, to scale :meth:`CommitteeODE.predict`'s covariance (None: zero covariance).
        initial_cov: Σ(0) of √D (X − X̄) at α = 0 (default zero; see :func:`gaussian_start_covariance`).
        integrals: None (closed forms of erf(·/√2)), :func:`relu_integrals`, :func:`linear_integrals`
            or :func:`quadrature_integrals` of another g (:func:`activation_integrals` by name).
        v0: the student's second layer at α = 0, shape (K,) (default ones).
        teacher_v: the teacher's second layer v*, shape (M,) (default ones).
        lr_v: η_v ≥ 0; v_k ← v_k + (η_v/D) Δ g(λ_k). 0 (default): v fixed at v0, and the flat
            coordinates (and ``initial_cov``) are (Q, R); > 0: they are (Q, R, v).

    Refuses with one :class:`InputError` line, before computing: wrong shapes, non-finite entries,
    T not positive definite, an impossible (Q0, R0), η ≤ 0, σ < 0, η_v < 0, D < 1.
    """
    from jaxlimit.limits.gaussian_expectations import require_x64

    Q0, R0, T = check_order_parameters(Q0, R0, T)
    lr = _positive(lr, "lr")
    if not (isinstance(noise_std, (int, float, np.floating)) and math.isfinite(noise_std) and noise_std >= 0):
        raise InputError(f"noise_std must be a finite number ≥ 0, got {noise_std!r}")
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1):
        raise InputError(f"dim must be a positive integer or None, got {dim!r}")
    K, M = R0.shape
    v0 = _check_vector(v0, K, "v0", "K")
    teacher_v = _check_vector(teacher_v, M, "teacher_v", "M")
    lr_v = require_real(lr_v, "lr_v", low=0.0, low_open=False)
    p0 = K * (K + 1) // 2 + K * M + (K if lr_v > 0 else 0)
    if initial_cov is None:
        initial_cov = np.zeros((p0, p0))
    initial_cov = np.asarray(initial_cov, np.float64)
    if initial_cov.shape != (p0, p0):
        raise InputError(f"initial_cov must have shape ({p0}, {p0}), got {initial_cov.shape}")
    if dim is not None:
        if lna_tensor_rule(K, M, integrals, second_layer=lr_v > 0):
            if LNA_NODES ** (K + M) * 3 > MAX_LNA_NODES:
                raise InputError(f"the fluctuation quadrature over K + M = {K + M} fields is too large for this g or "
                                 f"a trained second layer; use dim=None (no covariance) or K + M ≤ "
                                 f"{int(math.log(MAX_LNA_NODES / 3, LNA_NODES))}")
        elif K + M > MAX_CLOSED_LNA_UNITS:
            raise InputError(f"the fluctuation matrix B over K + M = {K + M} fields is too large; use dim=None "
                             f"(no covariance) or K + M ≤ {MAX_CLOSED_LNA_UNITS}")
    require_x64("the committee ODEs")
    return CommitteeODE(jnp.asarray(Q0), jnp.asarray(R0), jnp.asarray(T), jnp.asarray(initial_cov), float(lr),
                        float(noise_std), None if dim is None else int(dim),
                        ErfIntegrals() if integrals is None else integrals,
                        # second layers of ones are kept as None: the drift then multiplies by
                        # constants, and XLA compiles exactly the fixed-v = 1 code (same bits)
                        v0=None if lr_v == 0 and np.all(v0 == 1.0) else jnp.asarray(v0),
                        teacher_v=None if np.all(teacher_v == 1.0) else jnp.asarray(teacher_v), lr_v=float(lr_v))


def _check_vector(x, n: int, name: str, size: str) -> np.ndarray:
    """A finite float64 vector of length n (ones when None)."""
    if x is None:
        return np.ones(n)
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a vector of {n} numbers, got {x!r}") from None
    if x.shape != (n,):
        raise InputError(f"{name} must have shape ({size},) = ({n},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{name} must be finite")
    return x


def _positive(x, name):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer)) or not math.isfinite(x) \
            or x <= 0:
        raise InputError(f"{name} must be a finite number > 0, got {x!r}")
    return float(x)


def gaussian_start_covariance(K: int, T, init_std: float) -> np.ndarray:
    """Σ(0) of √D (X − X̄) when the students' weights are i.i.d. N(0, init_std²) and the teacher is
    fixed: Cov(√D Q_ij, √D Q_kl) = s⁴(δ_ik δ_jl + δ_il δ_jk), Cov(√D R_in, √D R_jm) = s² δ_ij T_nm,
    Q and R uncorrelated (exact at every D for the R block, leading order for Q)."""
    T = np.asarray(T, np.float64)
    M = T.shape[0]
    iu = list(zip(*np.triu_indices(K)))
    nq = len(iu)
    p0 = nq + K * M
    S = np.zeros((p0, p0))
    s2 = init_std**2
    for a, (i, j) in enumerate(iu):
        for b, (k, l) in enumerate(iu):
            S[a, b] = s2**2 * (int(i == k and j == l) + int(i == l and j == k))
    for i in range(K):
        S[nq + i * M: nq + (i + 1) * M, nq + i * M: nq + (i + 1) * M] = s2 * T
    return S


# --------------------------------------------------------------------------
# The phenomena as numbers
# --------------------------------------------------------------------------

def plateau_theory(K: int) -> dict[str, float]:
    """The η → 0 symmetric plateau of K = M, T = I: Q_ii = Q_ik = 1/(2K−1), R = 1/√(K(2K−1)),
    ε = (K/π)[π/6 − K arcsin(1/(2K))]."""
    return {"q": 1.0 / (2 * K - 1), "c": 1.0 / (2 * K - 1), "r": 1.0 / math.sqrt(K * (2 * K - 1)),
            "eps": K / math.pi * (math.pi / 6 - K * math.asin(1.0 / (2 * K)))}


def _symmetric(q, c, r, K):
    Q = c * jnp.ones((K, K)) + (q - c) * jnp.eye(K)
    return Q, r * jnp.ones((K, K))


PLATEAU_START = 0.25
"""The symmetric start Q = s² I, R = 0 (s² = PLATEAU_START) from which :func:`symmetric_fixed_point`
follows the symmetric flow to the plateau at η > 0."""
PLATEAU_FLOW_TIME = 400.0
"""How long (in η α) the symmetric flow runs before Newton's method polishes its end point."""


def symmetric_fixed_point(K: int, lr: float = 0.0, noise_std: float = 0.0, *, start=None,
                          tol: float = 1e-13, max_iter: int = 100) -> dict:
    """The symmetric (unspecialised) fixed point of K = M, T = I by Newton's method in (q, c, r)
    (Q_ii = q, Q_ik = c, R_in = r). ``lr = 0`` solves the η → 0 flow (the O(η) drift / η) from the
    Saad–Solla values q = c = 1/(2K−1). At η > 0 there is more than one symmetric root (the η → 0
    plateau is flat along q − c, and the O(η²) terms select a point on it), so by default Newton
    starts where the dynamics go: the end of the symmetric flow from Q = ¼ I, R = 0 (the reduced
    (q, c, r) ODE, symmetric by construction, Euler steps over η α = PLATEAU_FLOW_TIME); this is the plateau
    the order-parameter ODE from a symmetric random start sits on. ``start`` overrides both.
    Returns q, c, r, its ε_g, the Newton residual and Q, R."""
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise InputError(f"the symmetric plateau needs K = M ≥ 2, got {K!r}")
    T = jnp.eye(K)
    th = plateau_theory(K)

    if lr == 0.0:
        def residual(v):
            Q, R = _symmetric(v[0], v[1], v[2], K)
            dQ, dR = drift(Q, R, T, 1.0, 0.0, second_order=False)
            return jnp.stack([dQ[0, 0], dQ[0, 1], dR[0, 0]])

        both = jax.jit(lambda v: (residual(v), jax.jacfwd(residual)(v)))
    else:
        residual = functools.partial(_symmetric_residual, lr=float(lr), noise_std=float(noise_std), K=K)
        both = functools.partial(_symmetric_newton_parts, lr=float(lr), noise_std=float(noise_std), K=K)

    if start is not None:
        y = jnp.asarray(start, jnp.float64)
    elif lr == 0.0:
        y = jnp.asarray((th["q"], th["c"], th["r"]), jnp.float64)
    else:
        y = _symmetric_flow(jnp.asarray((PLATEAU_START, 0.0, 0.0), jnp.float64), float(lr), float(noise_std), K=K)
    for _ in range(max_iter):
        F, Jm = both(y)
        step = jnp.linalg.lstsq(Jm, F)[0]
        y = y - step
        if float(jnp.max(jnp.abs(step))) < tol:
            break
    Q, R = _symmetric(y[0], y[1], y[2], K)
    C = np.asarray(field_covariance(Q, R, T))
    return {"q": float(y[0]), "c": float(y[1]), "r": float(y[2]), "eps": float(generalisation_error(Q, R, T)),
            "residual": float(jnp.max(jnp.abs(residual(y)))), "Q": np.asarray(Q), "R": np.asarray(R),
            # a root of the drift that no weights realise (C not PSD) is not a plateau
            "physical": bool(np.linalg.eigvalsh(C)[0] >= -1e-9)}


def _symmetric_residual(v, lr, noise_std, K):
    """The drift / η of (Q_00, Q_01, R_00) at the symmetric point (q, c, r) = v (T = I)."""
    Q, R = _symmetric(v[0], v[1], v[2], K)
    dQ, dR = drift(Q, R, jnp.eye(K), lr, noise_std)
    return jnp.stack([dQ[0, 0], dQ[0, 1], dR[0, 0]]) / lr


@functools.partial(jax.jit, static_argnames=("K",))
def _symmetric_newton_parts(v, lr, noise_std, K):
    f = lambda x: _symmetric_residual(x, lr, noise_std, K)  # noqa: E731
    return f(v), jax.jacfwd(f)(v)


@functools.partial(jax.jit, static_argnames=("K",))
def _symmetric_flow(y0, lr, noise_std, K, dt: float = 0.25):
    """Euler steps of dv/dτ = residual(v) (τ = η α) over τ = PLATEAU_FLOW_TIME from y0: it only has to
    reach the plateau's basin (Newton's method polishes the end point), and one drift evaluation per
    step keeps the compilation small (the drift's Jacobian / η has |eigenvalues| < 2 here)."""
    f = lambda x: _symmetric_residual(x, lr, noise_std, K)  # noqa: E731
    return jax.lax.fori_loop(0, int(PLATEAU_FLOW_TIME / dt), lambda _, y: y + dt * f(y), y0)


@functools.partial(jax.jit, static_argnames=("K",))
def _flat_jacobian(X, T, lr, noise_std, K, lr_v=None):
    return jax.jacfwd(lambda x: flat_drift(x, T, lr, noise_std, None, K, lr_v=lr_v))(X)


@functools.partial(jax.jit, static_argnames=("K",))
def _newton_step(X, T, lr, noise_std, K):
    F = flat_drift(X, T, lr, noise_std, None, K)
    Jm = jax.jacfwd(lambda x: flat_drift(x, T, lr, noise_std, None, K))(X)
    return jnp.linalg.lstsq(Jm, F)[0], F, Jm


def jacobian(Q, R, T, lr: float, noise_std: float = 0.0, *, lr_v: float = 0.0) -> np.ndarray:
    """J = ∂F/∂X of the drift in flat coordinates (jax.jacfwd), shape (P0, P0), at v = v* = 1; v is
    one of the coordinates (at 1) when ``lr_v`` > 0."""
    K = int(np.shape(R)[0])
    X = flatten(jnp.asarray(Q, jnp.float64), jnp.asarray(R, jnp.float64), jnp.ones(K) if lr_v > 0 else None)
    return np.asarray(_flat_jacobian(X, jnp.asarray(T, jnp.float64), float(lr), float(noise_std), K,
                                     float(lr_v) if lr_v > 0 else None))


def leading_eigenvalue(Q, R, T, lr: float, noise_std: float = 0.0, *, lr_v: float = 0.0) -> float:
    """The largest real part of the drift's Jacobian's eigenvalues (> 0: unstable); v = v* = 1, a
    coordinate when ``lr_v`` > 0."""
    return float(np.max(np.linalg.eigvals(jacobian(Q, R, T, lr, noise_std, lr_v=lr_v)).real))


def escape_rate(K: int, lr: float, noise_std: float = 0.0) -> dict:
    """The plateau of K = M, T = I at step η and output noise σ: its height and the escape rate λ
    (largest eigenvalue of J at the symmetric fixed point, per unit α); the plateau lasts about
    ln(D) / (2λ) + O(1) (fluctuations of size D^{-1/2} grow like e^{λα} until they are O(1))."""
    fp = symmetric_fixed_point(K, lr, noise_std)
    if not fp["physical"] or fp["residual"] > 1e-9:
        raise InputError(f"no symmetric plateau found for K = {K} at η = {lr:g} (too close to η_max?)")
    lam = leading_eigenvalue(fp["Q"], fp["R"], np.eye(K), lr, noise_std)
    return {"K": K, "lr": lr, "plateau_eps": fp["eps"], "q": fp["q"], "c": fp["c"], "r": fp["r"],
            "escape_rate": lam}


def plateau_length(D: int, rate: float) -> float:
    """ln(D) / (2λ): the α it takes an O(D^{-1/2}) perturbation to grow to O(1) at rate λ."""
    return math.log(D) / (2.0 * rate)


def escape_times(eps, alphas, threshold: float) -> np.ndarray:
    """Each student's escape time: the first recorded α at which its ε_g is below ``threshold``
    (``eps`` (E, A) at ``alphas`` (A,)); +inf for a student that never is (censored at the last α)."""
    eps = np.asarray(eps, np.float64)
    alphas = np.asarray(alphas, np.float64)
    if eps.ndim != 2 or eps.shape[1] != alphas.shape[0]:
        raise InputError(f"eps must have shape (E, A) with A = {alphas.shape[0]} times, got {eps.shape}")
    below = eps < threshold
    return np.where(below.any(axis=1), alphas[np.argmax(below, axis=1)], np.inf)


MEDIAN_ABS_NORMAL = 0.6744897501960817
"""The median of |ξ|, ξ ~ N(0, 1)."""


def escape_time_cdf(t, median: float, rate: float) -> np.ndarray:
    """The law of the escape time when one unstable mode of rate λ dominates: its amplitude on the
    plateau is u(α) ≈ ξ e^{λα} √(v/D) with ξ ~ N(0, 1) (the linear-noise Gaussian), and a student
    escapes when |u| reaches a fixed u*, so α_esc = ln D/(2λ) + c − ln|ξ|/λ. In terms of its median
    m: P(α_esc ≤ t) = P(|ξ| ≥ m_|ξ| e^{−λ(t − m)}) = 2 (1 − Φ(m_|ξ| e^{−λ(t−m)})),
    m_|ξ| = 0.6745."""
    from scipy.stats import norm

    t = np.asarray(t, np.float64)
    return 2.0 * norm.sf(MEDIAN_ABS_NORMAL * np.exp(-rate * (t - median)))


def convergence_rate(T, lr: float, *, lr_v: float = 0.0) -> float:
    """The asymptotic rate at the perfect student Q = R = T, v = v* = 1 (K = M, σ = 0): −max Re eig J
    (> 0: converging); v one of the coordinates when ``lr_v`` > 0."""
    T = np.asarray(T, np.float64)
    return -leading_eigenvalue(T, T, T, lr, lr_v=lr_v)


def max_learning_rate(T, *, lr_v: float = 0.0, low: float = 1e-3, high: float = 50.0, tol: float = 1e-8) -> float:
    """η_max: the step at which the least stable eigenvalue of J at Q = R = T (v = v* = 1, trained at
    η_v = ``lr_v`` when > 0) crosses zero (bisection; larger steps make the perfect student unstable)."""
    T = np.asarray(T, np.float64)
    f = lambda eta: leading_eigenvalue(T, T, T, eta, lr_v=lr_v)
    if f(low) >= 0:
        raise InputError(f"the perfect student is unstable already at η = {low}")
    if f(high) < 0:
        return math.inf
    while high - low > tol * high:
        mid = 0.5 * (low + high)
        low, high = (mid, high) if f(mid) < 0 else (low, mid)
    return 0.5 * (low + high)


def noise_floor_theory(M: int, L: int, lr: float, noise_std: float) -> float:
    """ε* = (σ²η / 2π)(L + M/√3) (Goldt et al. 2019), to first order in σ²η, T = I."""
    return noise_std**2 * lr / (2 * math.pi) * (L + M / math.sqrt(3.0))


def specialised_fixed_point(M: int, L: int, lr: float, noise_std: float, *, alpha: float = 5000.0,
                            tol: float = 1e-12) -> dict:
    """The ODE's own fixed point of K = M + L students and T = I_M at (η, σ): integrated from a
    specialised start (student i near teacher i, the L extra students small) and polished by
    Newton's method. Returns Q, R, its ε_g and the largest eigenvalue of J there (< 0: stable)."""
    K = M + L
    T = jnp.eye(M)
    Q = jnp.diag(jnp.concatenate([0.8 * jnp.ones(M), 0.05 * jnp.ones(L)]))
    R = jnp.concatenate([0.8 * jnp.eye(M), 0.01 * jnp.ones((L, M))], axis=0)
    ode = CommitteeODE(Q, R, T, jnp.zeros((1, 1)), float(lr), float(noise_std))
    Qs, Rs = ode.order_parameters([alpha])
    X = flatten(Qs[-1], Rs[-1])
    for _ in range(30):
        step, F, Jm = _newton_step(X, T, float(lr), float(noise_std), K)
        X = X - step
        if float(jnp.max(jnp.abs(step))) < tol:
            break
    _, F, Jm = _newton_step(X, T, float(lr), float(noise_std), K)
    Qf, Rf = unflatten(X, K, M)
    return {"Q": np.asarray(Qf), "R": np.asarray(Rf), "eps": float(generalisation_error(Qf, Rf, T)),
            "residual": float(jnp.max(jnp.abs(F))),
            "leading_eigenvalue": float(np.max(np.linalg.eigvals(np.asarray(Jm)).real))}


def stationary_covariance(Q, R, T, lr: float, noise_std: float, nodes: int = LNA_NODES) -> np.ndarray:
    """Σ* solving J Σ + Σ Jᵀ + B = 0 at a stable fixed point (the stationary law of √D (X − X*))."""
    import scipy.linalg

    X = flatten(jnp.asarray(Q), jnp.asarray(R))
    Jm = jacobian(Q, R, T, lr, noise_std)
    _, B = increment_moments(X, jnp.asarray(T), lr, noise_std, None, nodes)
    S = scipy.linalg.solve_continuous_lyapunov(Jm, -np.asarray(B))
    return 0.5 * (S + S.T)


__all__ = [
    "ACTIVATIONS", "CommitteeODE", "ErfIntegrals", "GaussHermite", "LinearIntegrals", "ReluIntegrals",
    "activation_integrals", "check_order_parameters", "closed_increment_moments", "committee_ode",
    "convergence_rate",
    "drift", "erf_g", "erf_g_prime", "erf_integrals", "escape_rate", "escape_time_cdf", "escape_times",
    "field_covariance", "flat_generalisation_error", "flatten",
    "gaussian_expectation", "gaussian_start_covariance", "generalisation_error", "i2_closed", "i3_closed",
    "i4_closed", "increment_moments", "j2_closed", "jacobian", "leading_eigenvalue", "linear_integrals",
    "lna_tensor_rule", "tensor_increment_moments",
    "max_learning_rate",
    "noise_floor_theory", "relu_integrals", "relu_moment", "observable_names", "plateau_length", "plateau_theory", "quadrature_integrals",
    "second_layer_drift",
    "specialised_fixed_point", "stationary_covariance", "symmetric_fixed_point", "unflatten",
]
