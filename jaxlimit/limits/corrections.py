"""The first finite-width (1/n) correction of deep MLPs at initialisation (docs/corrections.md).

The network is the project's MLP in neural-tangents' "ntk" parameterisation
(:mod:`jaxlimit.models.mlp`, docs/deep.md), L hidden layers of equal width n:

    z¹ = (σ_w/√d) W⁰ x + σ_b b⁰,    z^{ℓ+1} = (σ_w/√n) W^ℓ σ(z^ℓ) + σ_b b^ℓ,    f = z^{L+1},

W, b ~ N(0, 1); C_W = σ_w², C_b = σ_b². For P inputs x_1..x_P write

    q̂^{ℓ+1}_{ab} = C_b + (C_W/n) Σ_j σ(z^ℓ_{j,a}) σ(z^ℓ_{j,b}),      q̂¹ = K¹ = C_b + C_W x_a·x_b/d,

the conditional kernel of layer ℓ+1: given layer ℓ, the rows z^{ℓ+1}_i are
i.i.d. N(0, q̂^{ℓ+1}) exactly, and given q̂^ℓ the rows z^ℓ_j are i.i.d.
N(0, q̂^ℓ). So (q̂^ℓ)_ℓ is an exact Markov chain on P×P matrices
(:func:`sample_conditional_kernels`), and the output's law is the Gaussian
mixture N(0, q̂^{L+1}).

The 1/n expansion (Roberts, Yaida & Hanin 2022, §4.3). With

    E q̂^ℓ = K^ℓ + δK^ℓ/n + O(1/n²),    Cov(q̂^ℓ_{ab}, q̂^ℓ_{cd}) = V^ℓ_{(ab)(cd)}/n + O(1/n²),

G(K)_{ab} = C_b + C_W ⟨σ_a σ_b⟩_K and, with the derivatives taken in the
independent entries of the symmetric matrix,

    K^{ℓ+1} = G(K^ℓ),
    δK^{ℓ+1}_{ab} = Σ_{(cd)} ∂G_{ab}/∂K_{cd} δK^ℓ_{cd} + ½ Σ_{(cd),(ef)} ∂²G_{ab}/∂K_{cd}∂K_{ef} V^ℓ_{(cd)(ef)},
    V^{ℓ+1}_{(ab)(cd)} = C_W² [⟨σ_aσ_bσ_cσ_d⟩ − ⟨σ_aσ_b⟩⟨σ_cσ_d⟩]_{K^ℓ}
                         + Σ_{(ef),(gh)} ∂G_{ab}/∂K_{ef} ∂G_{cd}/∂K_{gh} V^ℓ_{(ef)(gh)},

V¹ = δK¹ = 0 (the first layer is exactly Gaussian). G_{ab} depends only on
K_aa, K_ab, K_bb, so each derivative is that of a function of three
numbers. The first line is the conditional mean of q̂^{ℓ+1} (C_b + C_W ⟨σσ⟩
at q̂^ℓ) expanded to second order about K^ℓ; the second adds the conditional
covariance (C_W²/n) Cov(σσ, σσ) to the propagated one. Both are exact at
order 1/n. For one input they are THEORY.md §10's χ, g″ recursions.

The output's connected four-point function is
E[f_a f_b f_c f_d] − (K_ab K_cd + K_ac K_bd + K_ad K_bc) = [V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)]/n + O(1/n²);
for one input the excess kurtosis E f⁴/(3(E f²)²) − 1 = V/(n K²) + O(1/n²).

Evaluation. ⟨σσ⟩ and its first and second derivatives in (K_aa, K_ab, K_bb)
come from JAX derivatives of the project's closed forms (ab-relu family,
erf, sin, cos; :mod:`jaxlimit.limits.gaussian_expectations`) or, for any
other activation, of a tensor Gauss–Hermite rule (Cholesky coordinates,
smooth in the entries). The four-point term is a tensor Gauss–Hermite rule
in up to four dimensions (the eigenvectors of the quadruple's covariance),
except for a single point of an ab-relu activation, where
⟨σ⁴⟩ − ⟨σ²⟩² = [3(a⁴ + b⁴)/2 − (a² + b²)²/4] K² exactly. Every quantity is
computed at two rule sizes; the difference is the reported error estimate
(an estimate, not a bound; it is large where a kink meets the rule).

Exact results (:func:`exact_kurtosis_ratio`). For σ(u) = a·min(u,0) + b·max(u,0)
and C_b = 0, one input: q̂^{ℓ+1} = (C_W/n_ℓ) q̂^ℓ Σ_j σ(u_j)², u_j i.i.d.
N(0, 1), so E f⁴/(3 (E f²)²) = E (q̂^{L+1})²/(E q̂^{L+1})² = Π_ℓ (1 + κ/n_ℓ) with
κ = 3(a⁴ + b⁴)/2 / ((a² + b²)/2)² − 1 = 6(a⁴ + b⁴)/(a² + b²)² − 1: 2 for the
identity, 5 for relu.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation, get_activation
from jaxlimit.errors import InputError
from jaxlimit.limits import gaussian_expectations as ge
from jaxlimit.limits.mlp import check_depth, check_points, check_scales

_CLOSED = ("ab_relu", "erf", "sin", "cos")
"""The closed forms whose ⟨σσ⟩ is differentiated here (everything else: quadrature)."""

DEFAULT_NODES = (20, 28)
"""Gauss–Hermite nodes per dimension: the coarse and the fine rule (the fine
one is returned, their difference is the error estimate)."""


# Gaussian expectations as differentiable functions of the covariance ------------


def _gh(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss–Hermite nodes and weights for N(0, 1), m points."""
    x, w = np.polynomial.hermite_e.hermegauss(m)
    return x, w / np.sqrt(2.0 * np.pi)


def _ab_relu(cf: ge.ClosedForm | None) -> bool:
    return cf is not None and cf.kind == "ab_relu"


def _diag_fn(act: Activation, cf: ge.ClosedForm | None, rule) -> Callable:
    """s ↦ ⟨σ(u)²⟩, u ~ N(0, s), smooth in s > 0 (closed form or the 1-d Gauss–Hermite ``rule``)."""
    if _ab_relu(cf):
        c = (cf.a ** 2 + cf.b ** 2) / 2.0
        return lambda s: c * s
    if cf is not None and cf.kind == "erf":
        return lambda s: (2.0 / jnp.pi) * jnp.arcsin(2.0 * s / (1.0 + 2.0 * s))
    if cf is not None and cf.kind == "sin":
        return lambda s: -jnp.expm1(-2.0 * s) / 2.0
    if cf is not None and cf.kind == "cos":
        return lambda s: (1.0 + jnp.exp(-2.0 * s)) / 2.0
    z, w = rule
    return lambda s: jnp.sum(w * act.fn(jnp.sqrt(s) * z) ** 2)


def _pair_fn(act: Activation, cf: ge.ClosedForm | None, rule) -> Callable:
    """(s11, s12, s22) ↦ ⟨σ(u)σ(v)⟩ for a non-degenerate pair, smooth in the entries
    (closed form or the 2-d tensor Gauss–Hermite ``rule`` in Cholesky coordinates)."""
    if _ab_relu(cf):
        a, b = cf.a, cf.b

        def ab_relu(s11, s12, s22):
            root = jnp.sqrt(s11 * s22 - s12 * s12)
            theta = jnp.arctan2(root, s12)
            return (a - b) ** 2 * root / (2.0 * jnp.pi) + ((a * a + b * b) / 2.0 - (a - b) ** 2 * theta / (2.0 * jnp.pi)) * s12

        return ab_relu
    if cf is not None and cf.kind == "erf":
        return lambda s11, s12, s22: (2.0 / jnp.pi) * jnp.arctan2(
            2.0 * s12, jnp.sqrt((1.0 + 2.0 * s11) * (1.0 + 2.0 * s22) - 4.0 * s12 * s12))
    if cf is not None and cf.kind in ("sin", "cos"):
        sign = -1.0 if cf.kind == "sin" else 1.0
        return lambda s11, s12, s22: (jnp.exp(s12 - (s11 + s22) / 2.0) + sign * jnp.exp(-s12 - (s11 + s22) / 2.0)) / 2.0
    nodes, ww = rule
    z1, z2 = nodes[:, 0], nodes[:, 1]

    def fn(s11, s12, s22):
        r = jnp.sqrt(s11)
        u = r * z1
        v = (s12 / r) * z1 + jnp.sqrt(s22 - s12 * s12 / s11) * z2
        return jnp.sum(ww * act.fn(u) * act.fn(v))

    return fn


def _derivatives(fn: Callable, nargs: int):
    """(value, gradient, Hessian) of a scalar function of ``nargs`` scalars, vmapped (forward mode)."""
    def packed(s):
        return fn(*[s[i] for i in range(nargs)])
    grad = jax.jacfwd(packed)
    return jax.vmap(lambda s: (packed(s), grad(s), jax.jacfwd(grad)(s)))


def _rule(r: int, m: int):
    """The tensor Gauss–Hermite rule in r dimensions with m points each: nodes (m^r, r), weights (m^r,)."""
    x, w = _gh(m)
    grids = np.meshgrid(*[x] * r, indexing="ij")
    weights = functools.reduce(np.multiply.outer, [w] * r).ravel()
    return jnp.asarray(np.stack([g.ravel() for g in grids], axis=1)), jnp.asarray(weights)


FOUR_POINT_SCALE = {1: 8, 2: 3, 3: 1.5, 4: 1}
"""Points per dimension of the four-point rule, in units of the fine (or coarse) m, by the
number r of distinct inputs in the quadruple: r = 1 is a 1-dimensional rule of 8m points."""


def _quadruples(P: int):
    """The P⁴ quadruples (a, b, c, d) grouped by their number r of distinct entries:
    {r: (flat indices into P⁴, (Q, r) distinct inputs, (Q, 4) slot → distinct position)}."""
    groups: dict[int, tuple[list, list, list]] = {}
    for flat, quad in enumerate(np.ndindex(P, P, P, P)):
        distinct = sorted(set(quad))
        g = groups.setdefault(len(distinct), ([], [], []))
        g[0].append(flat)
        g[1].append(distinct)
        g[2].append([distinct.index(i) for i in quad])
    return {r: tuple(np.asarray(v) for v in g) for r, g in groups.items()}


def _rules(m: int, P: int, pad_to: int | None = None) -> dict:
    """Every quadrature rule one layer uses at size m (arguments of the compiled layer, not
    constants), padded with zero-weight nodes to the sizes of the m = ``pad_to`` rules so
    that the coarse and the fine rule share one compiled program."""
    pts = lambda r, mm: max(4, int(round(FOUR_POINT_SCALE[r] * mm)))
    size = lambda r: pts(r, pad_to or m) ** r

    def padded(rule, r):
        nodes, weights = rule
        extra = size(r) - weights.shape[0]
        return (jnp.concatenate([nodes, jnp.zeros((extra,) + nodes.shape[1:])]),
                jnp.concatenate([weights, jnp.zeros(extra)]))

    x, w = _gh(pts(1, m))
    return {"diag": padded((jnp.asarray(x), jnp.asarray(w)), 1), "pair": padded(_rule(2, pts(2, m)), 2),
            "four": {r: padded(_rule(r, pts(r, m)), r) for r in _quadruples(P)}}


def _four_point(act: Activation, rules: dict, K: jax.Array) -> jax.Array:
    """F_{abcd} = Cov(σ_aσ_b, σ_cσ_d) under N(0, K), (P, P, P, P): for each quadruple a
    tensor Gauss–Hermite rule in its r ≤ 4 distinct inputs, along the eigenvectors of
    their covariance (so singular covariances are fine), FOUR_POINT_SCALE[r]·m points per dimension."""
    P = K.shape[0]
    F = jnp.zeros(P ** 4)
    for r, (flat, distinct, slots) in _quadruples(P).items():
        nodes, weights = rules[r]
        cov = K[distinct[:, :, None], distinct[:, None, :]]

        def one(args, nodes=nodes, weights=weights):
            c, slot = args
            lam, vec = jnp.linalg.eigh(c)
            root = vec * jnp.sqrt(jnp.maximum(lam, 0.0))[None, :]
            s = act.fn(nodes @ root.T)[:, slot]                       # (N, 4)
            ab, cd = s[:, 0] * s[:, 1], s[:, 2] * s[:, 3]
            return jnp.sum(weights * ab * cd) - jnp.sum(weights * ab) * jnp.sum(weights * cd)

        F = F.at[flat].set(jax.lax.map(one, (cov, jnp.asarray(slots))))
    return F.reshape(P, P, P, P)


# The layer recursion ------------------------------------------------------------


def _layer_terms(act, cf, rules, K):
    """For the P×P kernel K: G₀ = ⟨σσ⟩ (P, P), its gradient (P, P, 3) and Hessian
    (P, P, 3, 3) in (K_aa, K_ab, K_bb), and F (P, P, P, P) = Cov(σ_aσ_b, σ_cσ_d)."""
    P = K.shape[0]
    diag = jnp.diag(K)
    s11 = jnp.broadcast_to(diag[:, None], (P, P))
    s22 = jnp.broadcast_to(diag[None, :], (P, P))
    eye = jnp.eye(P, dtype=bool)
    s12 = jnp.where(eye, 0.0, K)  # diagonal pairs get a harmless placeholder
    args = jnp.stack([s11.ravel(), s12.ravel(), s22.ravel()], axis=1)
    val, grad, hess = _derivatives(_pair_fn(act, cf, rules["pair"]), 3)(args)
    dval, dgrad, dhess = _derivatives(_diag_fn(act, cf, rules["diag"]), 1)(diag[:, None])
    val = jnp.where(eye, jnp.diag(dval), val.reshape(P, P))
    g_diag = jnp.zeros((P, P, 3)).at[:, :, 0].set(jnp.diag(dgrad[:, 0]))
    h_diag = jnp.zeros((P, P, 3, 3)).at[:, :, 0, 0].set(jnp.diag(dhess[:, 0, 0]))
    grad = jnp.where(eye[:, :, None], g_diag, grad.reshape(P, P, 3))
    hess = jnp.where(eye[:, :, None, None], h_diag, hess.reshape(P, P, 3, 3))

    F = _four_point(act, rules["four"], K)
    if _ab_relu(cf):  # one point: exact
        idx = np.stack(np.meshgrid(*[np.arange(P)] * 4, indexing="ij"), axis=-1)
        same = np.all(idx == idx[..., :1], axis=-1)
        c2, c4 = (cf.a ** 2 + cf.b ** 2) / 2.0, 1.5 * (cf.a ** 4 + cf.b ** 4)
        exact = (c4 - c2 ** 2) * diag[:, None, None, None] ** 2
        F = jnp.where(jnp.asarray(same), jnp.broadcast_to(exact, F.shape), F)
    return val, grad, hess, F


def _apply_jacobian(grad, M):
    """(J M)_{ab} = g_ab·(M_aa, M_ab, M_bb) on the trailing two axes of M (…, P, P)."""
    d = jnp.diagonal(M, axis1=-2, axis2=-1)
    return grad[..., 0] * d[..., :, None] + grad[..., 1] * M + grad[..., 2] * d[..., None, :]


def _vertex_entries(V):
    """V at the index pairs (aa, ab, bb) × (aa, ab, bb) for each (a, b): (P, P, 3, 3)."""
    P = V.shape[0]
    a = np.arange(P)[:, None] * np.ones((1, P), int)
    b = a.T
    first = [(a, a), (a, b), (b, b)]
    rows = []
    for i1, i2 in first:
        rows.append(jnp.stack([V[i1, i2, j1, j2] for j1, j2 in first], axis=-1))
    return jnp.stack(rows, axis=-2)


def _layer(K, dK, V, w2, b2, rules, act, cf):
    """One layer of the recursion: (K, δK, V) at layer ℓ → layer ℓ + 1 (module docstring)."""
    val, grad, hess, F = _layer_terms(act, cf, rules, K)
    J = w2 * grad
    dK_next = _apply_jacobian(J, dK) + 0.5 * w2 * jnp.sum(hess * _vertex_entries(V), axis=(-2, -1))
    VJ = _apply_jacobian(J, V)                                        # over (c, d)
    V_next = w2 * w2 * F + jnp.moveaxis(_apply_jacobian(J, jnp.moveaxis(VJ, (0, 1), (2, 3))), (2, 3), (0, 1))
    V_next = 0.5 * (V_next + jnp.transpose(V_next, (1, 0, 2, 3)))  # symmetric in a↔b, c↔d, (ab)↔(cd)
    V_next = 0.5 * (V_next + jnp.transpose(V_next, (0, 1, 3, 2)))
    V_next = 0.5 * (V_next + jnp.transpose(V_next, (2, 3, 0, 1)))
    K_next = b2 + w2 * val
    return 0.5 * (K_next + K_next.T), 0.5 * (dK_next + dK_next.T), V_next


@functools.lru_cache(maxsize=64)
def _compiled_layer(act: Activation, cf):
    return jax.jit(functools.partial(_layer, act=act, cf=cf))


def _recursion(K1, depth, act, cf, m, w2, b2, pad_to=None):
    P = K1.shape[0]
    K, dK, V = jnp.asarray(K1), jnp.zeros((P, P)), jnp.zeros((P, P, P, P))
    step, rules = _compiled_layer(act, cf), _rules(m, P, pad_to)
    for _ in range(depth):
        K, dK, V = step(K, dK, V, w2, b2, rules)
    return K, dK, V


@dataclasses.dataclass(frozen=True)
class MLPCorrections:
    """The 1/n expansion of a deep MLP's output kernel at initialisation (module docstring).

    Attributes:
        nngp: K^{L+1}, (P, P): the infinite-width kernel of the output.
        vertex: V^{L+1}, (P, P, P, P): n·Cov(q̂_ab, q̂_cd) at leading order.
        nngp_shift: δK^{L+1}, (P, P): n·(E q̂ − K) at leading order, so E f_a f_b = K + δK/n + O(1/n²).
        nngp_error, vertex_error, nngp_shift_error: estimates of the absolute
            error of each entry (fine minus coarse rule; zeros where exact).
        method: ``"closed-form"`` (⟨σσ⟩ in closed form: the ab-relu family, erf, sin, cos) or ``"quadrature"``.
        depth: L, the number of hidden layers.
    """

    nngp: np.ndarray
    vertex: np.ndarray
    nngp_shift: np.ndarray
    nngp_error: np.ndarray
    vertex_error: np.ndarray
    nngp_shift_error: np.ndarray
    method: str
    depth: int

    def kernel(self, width: float) -> np.ndarray:
        """E q̂ = E[f fᵀ] to order 1/n at equal hidden widths n: K + δK/n."""
        return self.nngp + self.nngp_shift / float(width)

    def kernel_covariance(self, width: float) -> np.ndarray:
        """Cov(q̂_ab, q̂_cd) to order 1/n: V/n, (P, P, P, P)."""
        return self.vertex / float(width)

    def excess_kurtosis(self, width: float) -> np.ndarray:
        """Per input, E f⁴/(3 (E f²)²) − 1 = V_(aa)(aa)/(n K_aa²) to order 1/n, (P,)."""
        P = self.nngp.shape[0]
        i = np.arange(P)
        return self.vertex[i, i, i, i] / (float(width) * self.nngp[i, i] ** 2)

    def four_point(self, width: float) -> np.ndarray:
        """E[f_a f_b f_c f_d] to order 1/n, (P, P, P, P): the Wick sum of K + δK/n plus the connected V/n terms."""
        K = self.kernel(width)
        V = self.vertex / float(width)
        wick = (np.einsum("ab,cd->abcd", K, K) + np.einsum("ac,bd->abcd", K, K)
                + np.einsum("ad,bc->abcd", K, K))
        return wick + V + np.transpose(V, (0, 2, 1, 3)) + np.transpose(V, (0, 3, 1, 2))


def _check_nodes(nodes) -> tuple[int, int]:
    try:
        coarse, fine = (int(v) for v in nodes)
    except (TypeError, ValueError):
        raise InputError(f"nodes must be two integers (coarse, fine), got {nodes!r}") from None
    if not 4 <= coarse < fine <= 64:
        raise InputError(f"nodes must satisfy 4 ≤ coarse < fine ≤ 64, got {nodes!r}")
    return coarse, fine


def first_layer_kernel(x: np.ndarray, W_std: float, b_std: float) -> np.ndarray:
    """K¹ = C_b + C_W x xᵀ/d, (P, P)."""
    return b_std ** 2 + W_std ** 2 * (x @ x.T) / x.shape[1]


def mlp_corrections(
    x,
    *,
    depth: int,
    activation: str | Callable | Activation,
    W_std: float,
    b_std: float,
    nodes: tuple[int, int] = DEFAULT_NODES,
) -> MLPCorrections:
    """The NNGP K, the four-point vertex V and the NLO kernel shift δK of the readout
    after ``depth`` hidden layers of equal width n, for the P rows of ``x`` (P, d).

    E q̂ = K + δK/n + O(1/n²) and Cov(q̂_ab, q̂_cd) = V/n + O(1/n²), q̂ the
    output's conditional kernel (module docstring); the project's MLP
    convention exactly (K¹ = C_b + C_W x·x′/d). Float64 NumPy arrays.

    Args:
        x: inputs (P, d); their first-layer kernel must be positive definite
            (distinct, and with b_std = 0 linearly independent, inputs).
        depth: L ≥ 1.
        activation: a name, an Activation or an elementwise callable.
        W_std: σ_w > 0.  b_std: σ_b ≥ 0.
        nodes: Gauss–Hermite points per dimension (coarse, fine); the cost of
            the four-point term grows as fine⁴ · P⁴.

    Raises:
        InputError: bad inputs (before any computation), or without jax_enable_x64.
    """
    ge.require_x64("the finite-width corrections")
    a = check_points(x, "x")
    depth = check_depth(depth)
    w, b = check_scales(W_std, b_std)
    coarse, fine = _check_nodes(nodes)
    if a.shape[0] > 8:
        raise InputError(f"mlp_corrections handles at most 8 inputs at once (the vertex has P⁴ entries), got {a.shape[0]}")
    act = get_activation(activation)
    cf = ge.closed_form_of(act)
    if cf is not None and cf.kind not in _CLOSED:
        cf = None  # e.g. gelu: quadrature
    K1 = first_layer_kernel(a, w, b)
    eig = np.linalg.eigvalsh(K1)
    if eig[0] <= 1e-10 * eig[-1]:
        raise InputError("the inputs' first-layer kernel C_b + C_W x·x′/d is singular: "
                         "give distinct (and, without biases, linearly independent) inputs")
    results = [_recursion(K1, depth, act, cf, m, w * w, b * b, fine) for m in (coarse, fine)]
    (k0, d0, v0), (k1, d1, v1) = [[np.asarray(r) for r in res] for res in results]
    if not all(np.all(np.isfinite(r)) for r in (k1, d1, v1)):
        raise InputError(f"the corrections of {act.name!r} are not finite at these inputs and scales")
    return MLPCorrections(k1, v1, d1, np.abs(k1 - k0), np.abs(v1 - v0), np.abs(d1 - d0),
                          "quadrature" if cf is None else "closed-form", depth)


# Exact results and samplers ------------------------------------------------------


def kurtosis_constant(activation: str | Callable | Activation) -> float:
    """κ = 6(a⁴ + b⁴)/(a² + b²)² − 1 of an ab-relu activation (2 identity, 5 relu), else InputError."""
    cf = ge.closed_form_of(get_activation(activation))
    if not _ab_relu(cf):
        raise InputError("the exact finite-width product holds for scale-invariant activations "
                         "a·min(u,0) + b·max(u,0) (relu, leaky relu, abs, identity) only")
    return 6.0 * (cf.a ** 4 + cf.b ** 4) / (cf.a ** 2 + cf.b ** 2) ** 2 - 1.0


def exact_kurtosis_ratio(widths, activation: str | Callable | Activation) -> float:
    """E f⁴ / (3 (E f²)²) = Π_ℓ (1 + κ/n_ℓ) for one input, C_b = 0, exact at any widths."""
    kappa = kurtosis_constant(activation)
    ws = _check_widths(widths)
    return float(np.prod([1.0 + kappa / n for n in ws]))


def _check_widths(widths) -> tuple[int, ...]:
    try:
        ws = tuple(widths)
    except TypeError:
        raise InputError(f"widths must be a list of positive integers, got {widths!r}") from None
    if not ws or any(isinstance(n, bool) or int(n) != n or n < 1 for n in ws):
        raise InputError(f"widths must be a non-empty list of positive integers, got {widths!r}")
    return tuple(int(n) for n in ws)


def sample_conditional_kernels(
    key: jax.Array,
    x,
    *,
    widths,
    activation: str | Callable | Activation,
    W_std: float,
    b_std: float,
    n_samples: int,
) -> np.ndarray:
    """Exact samples of the output's conditional kernel q̂^{L+1}, (n_samples, P, P).

    The Markov chain of the module docstring: q̂¹ = K¹; given q̂^ℓ draw the n_ℓ
    rows z_j ~ N(0, q̂^ℓ) i.i.d. and set q̂^{ℓ+1} = C_b + (C_W/n_ℓ) Σ_j σ(z_j)σ(z_j)ᵀ.
    No weights are drawn: this is the exact finite-width law of the real
    network's q̂ (hence of its outputs, f | q̂ ~ N(0, q̂)) at a cost of
    Σ n_ℓ P per sample.
    """
    ge.require_x64("the finite-width samplers")
    a = check_points(x, "x")
    ws = _check_widths(widths)
    w, b = check_scales(W_std, b_std)
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
    act = get_activation(activation)
    K1 = jnp.asarray(first_layer_kernel(a, w, b))
    P, chunk = a.shape[0], max(1, 2 ** 22 // (max(ws) * a.shape[0]))
    out = []
    for lo in range(0, int(n_samples), chunk):  # eager batched ops: nothing to compile per width or depth
        key, sub = jax.random.split(key)
        q = jnp.broadcast_to(K1, (min(chunk, int(n_samples) - lo), P, P))
        for k, n in zip(jax.random.split(sub, len(ws)), ws):
            # A Cholesky factor; the tiny ridge only keeps an exactly singular q̂ (all units dead) finite.
            ridge = 1e-300 + 1e-30 * jnp.trace(q, axis1=1, axis2=2)[:, None, None]
            root = jnp.linalg.cholesky(q + ridge * jnp.eye(P))
            z = jnp.einsum("snq,spq->snp", jax.random.normal(k, (q.shape[0], n, P), jnp.float64), root)
            h = act.fn(z)
            q = b * b + (w * w / n) * jnp.einsum("snp,snr->spr", h, h)
        out.append(np.asarray(q))
    return np.concatenate(out)


def network_conditional_kernel(model, params, x) -> jax.Array:
    """q̂^{L+1} = C_b + (C_W/n_L) σ(z^L) σ(z^L)ᵀ of one :class:`~jaxlimit.models.mlp.MLP`
    network at the inputs x (P, d), by its own forward pass (same as ``model.apply`` up to the readout)."""
    h = x
    for layer in params[:-1]:
        z = (model.W_std / np.sqrt(h.shape[-1])) * (h @ layer.W.T)
        if layer.b is not None:
            z = z + model.b_std * layer.b
        h = model.activation(z)
    return model.b_std ** 2 + (model.W_std ** 2 / h.shape[-1]) * (h @ h.T)


# The NTK's finite-width fluctuations: a Monte Carlo estimator ------------------------


def network_ntk(model, params, x) -> jax.Array:
    """The empirical NTK Θ̂ (P, P) of one :class:`~jaxlimit.models.mlp.MLP` network (every
    leaf weighted 1, as :func:`~jaxlimit.limits.empirical.empirical_ntk`), by one forward and one
    backward pass: Θ̂_ab = Σ_{ℓ=0}^{L} (δ^{ℓ+1}_a·δ^{ℓ+1}_b) q̂^{ℓ+1}_ab, δ^ℓ = ∂f/∂z^ℓ, δ^{L+1} = 1,
    q̂^{ℓ+1} = C_b + (C_W/n_ℓ) h^ℓ h^ℓᵀ with h⁰ = x and h^ℓ = σ(z^ℓ)."""
    hs, zs = [x], []
    for layer in params[:-1]:
        z = (model.W_std / np.sqrt(hs[-1].shape[-1])) * (hs[-1] @ layer.W.T)
        if layer.b is not None:
            z = z + model.b_std * layer.b
        zs.append(z)
        hs.append(model.activation(z))
    delta = jnp.ones((x.shape[0], 1))
    theta = jnp.zeros((x.shape[0], x.shape[0]))
    for ell in range(len(params) - 1, -1, -1):
        h = hs[ell]
        q = (model.b_std ** 2 if params[ell].b is not None else 0.0) + (model.W_std ** 2 / h.shape[-1]) * (h @ h.T)
        theta = theta + (delta @ delta.T) * q
        if ell > 0:
            back = (model.W_std / np.sqrt(h.shape[-1])) * (delta @ params[ell].W)
            delta = model.activation.derivative(zs[ell - 1]) * back
    return theta


@dataclasses.dataclass(frozen=True)
class NTKFluctuations:
    """Monte Carlo moments of the empirical NTK at initialisation over independent networks
    (an estimator, not a recursion: every number carries its standard error).

    Attributes:
        widths: the hidden widths.
        beta: Σ_ℓ 1/n_ℓ (Hanin–Nica).
        mean, mean_se: E Θ̂ (P, P) and its standard error.
        var, var_se: Var Θ̂ (P, P), entrywise, and its standard error.
        ntk: Θ, the infinite-width NTK (P, P).
        ratio, ratio_se: E Θ̂(x,x)²/(E Θ̂(x,x))² per input (P,), delta-method standard error.
        n_networks: the sample size.
    """

    widths: tuple[int, ...]
    beta: float
    mean: np.ndarray
    mean_se: np.ndarray
    var: np.ndarray
    var_se: np.ndarray
    ntk: np.ndarray
    ratio: np.ndarray
    ratio_se: np.ndarray
    n_networks: int

    def scaled_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """(E Θ̂ − Θ)/β and its standard error: at equal widths n the 1/n mean-shift
        coefficient divided by the depth (β = L/n)."""
        return (self.mean - self.ntk) / self.beta, self.mean_se / self.beta

    def scaled_variance(self) -> tuple[np.ndarray, np.ndarray]:
        """Var Θ̂/β and its standard error (at equal widths: n·Var Θ̂/L)."""
        return self.var / self.beta, self.var_se / self.beta


def ntk_fluctuations(
    key: jax.Array,
    x,
    *,
    widths,
    activation: str | Callable | Activation,
    W_std: float,
    b_std: float,
    n_networks: int,
    batch: int = 2000,
) -> NTKFluctuations:
    """Monte Carlo estimate of the NTK's mean and variance at initialisation for the project's
    MLP with hidden ``widths`` (any activation), from ``n_networks`` independent networks.

    Not a recursion: the 1/n coefficients (PDLT ch. 8) are estimated, with standard errors
    (the variance's from the sample fourth moment, the ratio's by the delta method).
    """
    from jaxlimit.limits.mlp import mlp_kernels
    from jaxlimit.models.mlp import MLP

    ge.require_x64("the finite-width NTK moments")
    a = check_points(x, "x")
    ws = _check_widths(widths)
    w, b = check_scales(W_std, b_std)
    if isinstance(n_networks, bool) or int(n_networks) != n_networks or n_networks < 2:
        raise InputError(f"n_networks must be an integer ≥ 2, got {n_networks!r}")
    model = MLP(ws, a.shape[1], activation, w, b)
    xs = jnp.asarray(a)
    one = jax.jit(jax.vmap(lambda k: network_ntk(model, model.init(k, jnp.float64), xs)))
    keys = jax.random.split(key, int(n_networks))
    th = np.concatenate([np.asarray(one(keys[i:i + batch])) for i in range(0, int(n_networks), batch)])
    N = th.shape[0]
    mean = th.mean(0)
    dev = th - mean
    var = (dev ** 2).mean(0)
    var_se = np.sqrt(np.maximum((dev ** 4).mean(0) - var ** 2, 0.0) / N)
    diag = np.einsum("nii->ni", th) / np.diag(mean)
    ratio = (diag ** 2).mean(0)
    ratio_se = (diag ** 2 - 2.0 * ratio * diag).std(0) / np.sqrt(N)
    _, ntk = mlp_kernels(a, depth=len(ws), activation=activation, W_std=w, b_std=b)
    return NTKFluctuations(ws, float(sum(1.0 / n for n in ws)), mean, th.std(0) / np.sqrt(N), var, var_se,
                           ntk, ratio, ratio_se, N)


__all__ = ["DEFAULT_NODES", "MLPCorrections", "NTKFluctuations", "exact_kurtosis_ratio", "first_layer_kernel",
           "kurtosis_constant", "mlp_corrections", "network_conditional_kernel", "network_ntk", "ntk_fluctuations",
           "sample_conditional_kernels"]
