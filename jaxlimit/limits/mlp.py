"""NNGP and NTK of deep fully connected networks (docs/deep.md), any depth.

The network, in neural-tangents' "ntk" parameterisation (W, b ~ N(0, 1)):

    z¹ = (σ_w/√d) W⁰ x + σ_b b⁰,    z^{l+1} = (σ_w/√n_l) W^l φ(z^l) + σ_b b^l,    f = z^{L+1},

with L ≥ 1 hidden layers of widths n_1..n_L → ∞. The kernels obey

    K¹(x, x′) = σ_w² x·x′/d + σ_b²,                      Θ¹ = K¹,
    K^{l+1}   = σ_w² E[φ(u)φ(v)] + σ_b²,                  Θ^{l+1} = K^{l+1} + σ_w² E[φ′(u)φ′(v)] Θ^l,

with (u, v) ~ N(0, [[K^l(x,x), K^l(x,x′)], [K^l(x,x′), K^l(x′,x′)]]); the NNGP is
K^{L+1} and the NTK Θ^{L+1}, exactly NT's
``stax.serial(*[Dense(n, W_std, b_std), act] * L, Dense(1, W_std, b_std))``.
The expectations come from :mod:`jaxlimit.limits.gaussian_expectations`.

Accuracy at nearly parallel and antiparallel inputs. A kinked activation
(relu, abs, leaky relu) makes E[φ′φ′] depend on the angle θ of the pair, and
θ from rounded Gram entries is off by √ε ≈ 1e-8 when θ is near 0 or π. So for
the ab-relu family each pair also carries det = K₁₁K₂₂ − K₁₂² and the squared
distance and anti-distance K₁₁ + K₂₂ ∓ 2K₁₂: at the first layer from the
inputs themselves (differences, for the nearly parallel pairs), at later
layers by cancellation-free updates
(:func:`~jaxlimit.limits.gaussian_expectations.ab_relu_geometry`). The
kernels then agree with a 60-digit evaluation of the recursion to rounding
at every angle.

Memory. Only the diagonal variances K^l(x, x) are needed for all points at
once (one vector per layer); the pairs are computed in tiles of at most
``tile_size`` × ``tile_size`` entries, each tile through all L layers, and
written into the result. Peak memory is the two (P1, P2) results plus a few
tiles, so a 10⁴ × 10⁴ Gram matrix needs 1.6 GB for its two float64 results
and tens of MB besides.

Error bounds (:func:`estimate_mlp_kernels`). Each layer adds its own bound
(rounding for closed forms, the quadrature bound otherwise) and carries the
previous layer's error forward to first order:

* through s12: |∂E[φφ]/∂s12| = |E[φ′φ′]| ≤ √(E[φ′(u)²] E[φ′(v)²]) (Price's
  theorem and Cauchy–Schwarz); |∂E[φ′φ′]/∂s12| ≤ √(E[φ″(u)²] E[φ″(v)²]) for
  the smooth part of φ′, plus, for the jumps J_k of φ′ at its kinks (which
  make E[φ′φ′] depend on s12 through orthant probabilities), the smaller of
  (Σ|J_k|)² δ/(2π √det) and the Hölder bound (Σ|J_k|)² √(δ/(2 √(s11 s22)))/2;
* through the variances s11, s22: (|E| + L |s12|)(δ11/s11 + δ22/s22)/2 with L
  the s12-sensitivity above, exact for positively homogeneous activations
  and a first-order estimate otherwise (these errors are the diagonal's own
  quadrature errors, at rounding level for every activation we know).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation, get_activation
from jaxlimit.models.mlp import check_scales
from jaxlimit.errors import InputError
from jaxlimit.limits import gaussian_expectations as ge
from jaxlimit.limits.kernels import KernelPair
from jaxlimit.limits.kernel_limit import KernelLimit, check_targets
from jaxlimit.validation import require_real

DEFAULT_TILE = 2048
"""Pairs per tile side: 2048² float64 entries are 32 MB per array."""


class MLPKernels(KernelPair):
    """The NNGP and NTK of a deep fully connected network, with error bounds.

    Attributes:
        nngp: K^{L+1}(x1_i, x2_j), shape (P1, P2), NumPy float64.
        ntk: Θ^{L+1}(x1_i, x2_j), shape (P1, P2).
        nngp_error: a bound on the absolute error of each NNGP entry.
        ntk_error: the same for the NTK.
        method: ``"closed-form"`` or ``"quadrature"``.
    """


# Input checks ----------------------------------------------------------------


def check_points(x, name: str) -> np.ndarray:
    """A finite float64 array of shape (P, d) with P ≥ 1, d ≥ 1, or an InputError naming ``name``."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array of shape (P, d)") from None
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{name} must have shape (P, d) with P, d ≥ 1, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} contains NaN or infinite values")
    return a


def check_test_points(x_test, x_train: np.ndarray) -> np.ndarray:
    """Test inputs of the training inputs' dimension, (P, d); None or an empty array: none, (0, d)."""
    if x_test is None or np.size(x_test) == 0:
        return np.zeros((0, x_train.shape[1]))
    xb = check_points(x_test, "x_test")
    if xb.shape[1] != x_train.shape[1]:
        raise InputError(f"x_test has dimension {xb.shape[1]} but x_train has {x_train.shape[1]}")
    return xb


def check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, (int, float, np.integer, np.floating)) \
            or not float(depth).is_integer() or depth < 1:
        raise InputError(f"depth must be an integer ≥ 1 (the number of hidden layers), got {depth!r}")
    return int(depth)


def _check_tile(tile_size) -> int:
    if isinstance(tile_size, bool) or int(tile_size) != tile_size or tile_size < 1:
        raise InputError(f"tile_size must be a positive integer, got {tile_size}")
    return int(tile_size)


# The recursion -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What every layer and tile shares."""

    act: Activation
    closed: ge.ClosedForm | None
    piece: float
    depth: int
    w2: float
    b2: float
    dim: int
    jumps: float = 0.0  # Σ|J_k|, the total jump of φ′ (error propagation only)

    @property
    def method(self) -> str:
        return "quadrature" if self.closed is None else "closed-form"

    def expect(self, s11, s12, s22) -> ge.GaussianExpectations:
        if self.closed is not None:
            return ge.closed_form_expectations(self.closed, s11, s12, s22)
        return ge.expectations(self.act, s11, s12, s22, method="quadrature", piece=self.piece)

    def first_layer_diagonal(self, x: np.ndarray) -> np.ndarray:
        return self.w2 * np.sum(x * x, axis=1) / self.dim + self.b2


def _diagonals(x: np.ndarray, s: _Setup, with_errors: bool) -> list[dict]:
    """Per-layer diagonal quantities of the points x (P, d), l = 1..L.

    Each entry holds ``q`` = K^l(x, x), the variance entering layer l's
    expectations, and with errors ``dq`` (its error bound), ``d1`` = E[φ′(u)²]
    and ``d2`` = E[φ″(u)²] at that variance (the propagation's sensitivities).
    """
    q = s.first_layer_diagonal(x)
    dq = np.zeros_like(q)
    layers = []
    for _ in range(s.depth):
        e = s.expect(q, q, q)
        ff, dd = np.asarray(e.ff), np.asarray(e.dd)
        layer = {"q": q}
        if with_errors:
            layer.update(dq=dq, d1=dd, d2=_second_derivative_moment(s, q))
            err_ff, _ = _propagate(s, layer, layer, ff, dd, np.asarray(e.ff_error), np.asarray(e.dd_error), q, dq)
            dq = s.w2 * err_ff
        q = s.w2 * ff + s.b2
        layers.append(layer)
    return layers


def _second_derivative_moment(s: _Setup, q: np.ndarray) -> np.ndarray:
    """E[φ″(u)²] for u ~ N(0, q) with φ″ the a.e. second derivative: 0 for the
    piecewise-linear closed forms, else one-dimensional Gauss–Kronrod with the
    kinks as breakpoints."""
    if s.closed is not None and s.closed.kind == "ab_relu":
        return np.zeros_like(q)
    n, radius = ge.quadrature_grid(float(np.sqrt(np.max(q))), s.piece)
    kinks = ge.find_kinks(s.act, radius).locations if s.closed is None else np.zeros(0)
    a = np.sqrt(q)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cuts = np.where(a > 0, kinks[None, :] / a, ge.Z_MAX)
    uniform = np.broadcast_to(np.linspace(-ge.Z_MAX, ge.Z_MAX, n + 1), (len(q), n + 1))
    br = np.sort(np.clip(np.concatenate([uniform, cuts], axis=1), -ge.Z_MAX, ge.Z_MAX), axis=1)
    z, wk, _ = ge.gauss_kronrod(jnp.asarray(br[:, :-1]), jnp.asarray(br[:, 1:]))
    d2 = ge.second_derivative(s.act)(jnp.asarray(a) * z)
    return np.asarray(jnp.sum(wk * ge.density(z) * d2**2, axis=1))


def _pairwise(row: dict, col: dict, key: str, two_d: bool):
    """A diagonal quantity for the rows and the columns, shaped to broadcast over pairs."""
    return (row[key][:, None], col[key][None, :]) if two_d else (row[key], col[key])


def _propagate(s: _Setup, row: dict, col: dict, ff, dd, ff_err, dd_err, k, dk):
    """Bounds on the errors of E[φφ] and E[φ′φ′] at one layer: the layer's own
    bounds plus the first-order effect of the incoming errors dk (on the pairs'
    s12) and row/col ``dq`` (on the variances); see the module docstring."""
    two_d = np.ndim(k) == 2
    q1, q2 = _pairwise(row, col, "q", two_d)
    dq1, dq2 = _pairwise(row, col, "dq", two_d)
    a1, a2 = _pairwise(row, col, "d1", two_d)
    b1, b2 = _pairwise(row, col, "d2", two_d)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 0.5 * (np.where(q1 > 0, dq1 / q1, 0.0) + np.where(q2 > 0, dq2 / q2, 0.0))
        det = np.maximum(q1 * q2 - k * k, 0.0)
        lipschitz = np.where(det > 0, s.jumps**2 * dk / (2.0 * np.pi * np.sqrt(det)), np.inf)
        holder = s.jumps**2 * np.sqrt(np.where(q1 * q2 > 0, dk / (2.0 * np.sqrt(q1 * q2)), 0.0)) / 2.0
    kink = np.minimum(lipschitz, holder) if s.jumps > 0 else 0.0
    lip_ff = np.sqrt(np.maximum(a1 * a2, 0.0))
    lip_dd = np.sqrt(np.maximum(b1 * b2, 0.0))
    err_ff = ff_err + lip_ff * dk + (np.abs(ff) + lip_ff * np.abs(k)) * rel
    err_dd = dd_err + lip_dd * dk + kink + (np.abs(dd) + lip_dd * np.abs(k)) * rel
    return err_ff, err_dd


_NEAR = 1e-4
"""Pairs whose det, distance² or anti-distance² is below this fraction of its
scale get their first-layer geometry recomputed from differences of the inputs."""


def _first_layer_pairs(s: _Setup, xa: np.ndarray, xb: np.ndarray):
    """K¹ and the pair geometry (det, dist, anti) = (K¹₁₁K¹₂₂ − K¹₁₂², K¹₁₁ + K¹₂₂ ∓ 2K¹₁₂), (T1, T2) each.

    From the products x·x′ (fast) and, for nearly parallel or antiparallel
    pairs, from the inputs themselves: dist = σ_w²|x − x′|²/d,
    anti = σ_w²|x + x′|²/d + 4σ_b² and det = (σ_w²/d)² |x|²|p|² + (σ_w²σ_b²/d)|x − x′|²
    with p = x′ − (x·x′/|x|²) x, each accurate to rounding of the inputs (the
    products alone leave det an error of ε·K₁₁K₂₂, i.e. angles off by √ε).
    """
    w, beta, d = s.w2, s.b2, s.dim
    na, nb = np.sum(xa * xa, axis=1), np.sum(xb * xb, axis=1)
    k = w * (xa @ xb.T) / d + beta
    q1, q2 = (w * na / d + beta)[:, None], (w * nb / d + beta)[None, :]
    det, dist, anti = q1 * q2 - k * k, q1 + q2 - 2.0 * k, q1 + q2 + 2.0 * k
    near = (det <= _NEAR * q1 * q2) | (dist <= _NEAR * (q1 + q2)) | (anti <= _NEAR * (q1 + q2))
    rows, cols = np.nonzero(near)
    for lo in range(0, rows.size, 2**16):  # bounded memory even if every pair is close
        i, j = rows[lo:lo + 2**16], cols[lo:lo + 2**16]
        u, v = xa[i], xb[j]
        diff2 = np.sum((u - v) ** 2, axis=1)
        nu = np.sum(u * u, axis=1)
        t = np.where(nu > 0, np.sum(u * v, axis=1) / np.where(nu > 0, nu, 1.0), 0.0)
        wedge = nu * np.sum((v - t[:, None] * u) ** 2, axis=1)
        dist[i, j] = w * diff2 / d
        anti[i, j] = w * np.sum((u + v) ** 2, axis=1) / d + 4.0 * beta
        det[i, j] = (w / d) ** 2 * wedge + w * beta / d * diff2
    return k, np.maximum(det, 0.0), dist, anti


def _closed_layer(closed: ge.ClosedForm, w2, b2, q1, q2, k, det, dist, anti):
    """One layer of a closed form on pairs: (E[φφ], E[φ′φ′], their rounding bounds, and
    the next layer's det, dist, anti). For ab-relu the geometry is carried
    exactly (:func:`~jaxlimit.limits.gaussian_expectations.ab_relu_geometry`);
    the smooth closed forms do not need it and recompute it from the entries."""
    if closed.kind == "ab_relu":
        e = ge.closed_form_expectations(closed, q1, k, q2, det)
        ab_c2, minus, plus = ge.ab_relu_geometry(closed, q1, k, q2, det, dist, anti)
        det_next, dist_next, anti_next = w2 * w2 * ab_c2 + w2 * b2 * minus, w2 * minus, w2 * plus + 4.0 * b2
    else:
        e = ge.closed_form_expectations(closed, q1, k, q2)
        det_next = dist_next = anti_next = None
    return e, det_next, dist_next, anti_next


def _tile(s: _Setup, xa, xb, rows, cols, with_errors: bool):
    """One tile through all layers: (K, Θ, δK, δΘ), each (T1, T2)."""
    k, det, dist, anti = _first_layer_pairs(s, xa, xb)
    theta = k.copy()
    dk = np.zeros_like(k)
    dtheta = np.zeros_like(k)
    for l in range(s.depth):
        q1, q2 = rows[l]["q"][:, None], cols[l]["q"][None, :]
        if s.closed is not None:
            e, det, dist, anti = _closed_layer(s.closed, s.w2, s.b2, q1, q2, k, det, dist, anti)
        else:
            e = s.expect(q1, k, q2)
        ff, dd = np.asarray(e.ff), np.asarray(e.dd)
        if with_errors:
            err_ff, err_dd = _propagate(s, rows[l], cols[l], ff, dd, np.asarray(e.ff_error),
                                        np.asarray(e.dd_error), k, dk)
            dk_next = s.w2 * err_ff
            dtheta = dk_next + s.w2 * (err_dd * np.abs(theta) + np.abs(dd) * dtheta)
            dk = dk_next
        k_next = s.w2 * ff + s.b2
        theta = k_next + s.w2 * dd * theta
        k = k_next
    return k, theta, dk, dtheta


@functools.lru_cache(maxsize=64)
def _closed_tile_fn(closed: ge.ClosedForm, depth: int) -> Callable:
    """The whole recursion of one tile, compiled once per closed form and depth."""

    def tile(k, det, dist, anti, qa, qb, w2, b2):  # four (T1, T2), (L, T1), (L, T2), (), ()
        theta = k
        for l in range(depth):
            e, det, dist, anti = _closed_layer(closed, w2, b2, qa[l][:, None], qb[l][None, :], k, det, dist, anti)
            k_next = w2 * e.ff + b2
            theta = k_next + w2 * e.dd * theta
            k = k_next
        return k, theta

    return jax.jit(tile)


def _padded(values: np.ndarray, size: int, axis: int, fill: float) -> np.ndarray:
    """``values`` padded with ``fill`` to ``size`` along ``axis`` (a full tile reuses one compiled program)."""
    pad = [(0, 0)] * values.ndim
    pad[axis] = (0, size - values.shape[axis])
    return np.pad(values, pad, constant_values=fill)


def estimate_mlp_kernels(
    x1,
    x2=None,
    *,
    depth: int,
    activation: str | Callable | Activation,
    W_std: float,
    b_std: float,
    method: str = "auto",
    tile_size: int = DEFAULT_TILE,
    piece: float = 2.0,
    return_error: bool = True,
) -> MLPKernels:
    """The NNGP and NTK between the rows of ``x1`` (P1, d) and ``x2`` (P2, d), with error bounds.

    Args:
        x1, x2: inputs; ``x2=None`` means ``x1``.
        depth: L ≥ 1, the number of hidden layers.
        activation: a name, an Activation or an elementwise callable.
        W_std: σ_w > 0.
        b_std: σ_b ≥ 0 (0: no biases).
        method: ``"auto"``, ``"closed-form"`` or ``"quadrature"`` (see
            :func:`~jaxlimit.limits.gaussian_expectations.gaussian_expectations`).
        tile_size: pairs per tile side; it bounds memory and changes no value
            beyond rounding.
        piece: the quadrature piece length (quadrature only).
        return_error: compute the error bounds of the module docstring; without
            them the errors are zeros and closed forms run as one compiled
            program per tile.

    Returns:
        An :class:`MLPKernels` of NumPy float64 arrays of shape (P1, P2).
    """
    ge.require_x64("the deep kernels")
    a = check_points(x1, "x1")
    b = a if x2 is None else check_points(x2, "x2")
    if a.shape[1] != b.shape[1]:
        raise InputError(f"x1 and x2 have different input dimensions {a.shape[1]} and {b.shape[1]}")
    depth = check_depth(depth)
    w, bs = check_scales(W_std, b_std)
    ge.check_method(method)
    tile = _check_tile(tile_size)
    if not 0.0 < piece <= 4.0:
        raise InputError(f"quadrature piece must lie in (0, 4], got {piece}")
    act = get_activation(activation)
    closed = ge.closed_form_of(act) if method != "quadrature" else None
    if method == "closed-form" and closed is None:
        raise InputError(f"no closed-form kernel for activation {act.name!r}; use quadrature")
    setup = _Setup(act, closed, float(piece), depth, w * w, bs * bs, a.shape[1])
    rows = _diagonals(a, setup, False)
    cols = rows if x2 is None else _diagonals(b, setup, False)
    if return_error:
        # The kinks' total jump over every variance the layers reach.
        largest = max(float(np.max(layer["q"])) for layer in rows + cols)
        jumps = _total_jump(setup, ge.quadrature_grid(math.sqrt(largest), piece)[1])
        setup = dataclasses.replace(setup, jumps=jumps)
        rows = _diagonals(a, setup, True)
        cols = rows if x2 is None else _diagonals(b, setup, True)

    p1, p2 = a.shape[0], b.shape[0]
    nngp, ntk = np.empty((p1, p2)), np.empty((p1, p2))
    nngp_err, ntk_err = np.zeros((p1, p2)), np.zeros((p1, p2))
    compiled = closed is not None and not return_error
    if compiled:
        tile_fn = _closed_tile_fn(closed, depth)
        qa = np.stack([layer["q"] for layer in rows])
        qb = np.stack([layer["q"] for layer in cols])
        t1, t2 = min(tile, p1), min(tile, p2)
    for i0 in range(0, p1, tile):
        i1 = min(i0 + tile, p1)
        for j0 in range(0, p2, tile):
            j1 = min(j0 + tile, p2)
            if compiled:
                # Padded to a full tile (unit variances, zero pairs) so every tile reuses one program.
                pairs = [_padded(_padded(v, t1, 0, 0.0), t2, 1, 0.0)
                         for v in _first_layer_pairs(setup, a[i0:i1], b[j0:j1])]
                k, theta = tile_fn(*(jnp.asarray(v) for v in pairs),
                                   jnp.asarray(_padded(qa[:, i0:i1], t1, 1, 1.0)),
                                   jnp.asarray(_padded(qb[:, j0:j1], t2, 1, 1.0)), setup.w2, setup.b2)
                nngp[i0:i1, j0:j1] = np.asarray(k)[: i1 - i0, : j1 - j0]
                ntk[i0:i1, j0:j1] = np.asarray(theta)[: i1 - i0, : j1 - j0]
            else:
                out = _tile(setup, a[i0:i1], b[j0:j1], _slice(rows, i0, i1), _slice(cols, j0, j1), return_error)
                nngp[i0:i1, j0:j1], ntk[i0:i1, j0:j1], nngp_err[i0:i1, j0:j1], ntk_err[i0:i1, j0:j1] = out
    return MLPKernels(nngp, ntk, nngp_err, ntk_err, setup.method)


def _total_jump(s: _Setup, radius: float) -> float:
    """Σ_k |J_k|, the total jump of φ′ at its kinks within ``radius``."""
    if s.closed is not None:
        return abs(s.closed.b - s.closed.a) if s.closed.kind == "ab_relu" else 0.0
    return float(np.sum(np.abs(ge.find_kinks(s.act, radius).derivative_jumps)))


def _slice(layers: list[dict], lo: int, hi: int) -> list[dict]:
    return [{key: value[lo:hi] for key, value in layer.items()} for layer in layers]


def mlp_kernels(
    x1,
    x2=None,
    *,
    depth: int,
    activation: str | Callable | Activation,
    W_std: float,
    b_std: float,
    method: str = "auto",
    tile_size: int = DEFAULT_TILE,
    piece: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(nngp, ntk)`` = (K^{L+1}, Θ^{L+1}) of a depth-L fully connected network, each (len(x1), len(x2)).

    NT's "ntk" parameterisation (module docstring); ``depth`` counts hidden
    layers. Closed forms for relu, leaky relu, abs, identity, erf, sin, cos
    and the exact GELU (names or recognised callables); quadrature otherwise.
    Computed in float64 tiles of at most ``tile_size``² pairs; returns NumPy
    arrays. :func:`estimate_mlp_kernels` also returns error bounds.

    Raises:
        InputError: for inputs that are not finite (P, d) arrays of one
            dimension, depth < 1 or not an integer, W_std ≤ 0, b_std < 0 or
            non-finite scales, an unknown activation or method, or without
            ``jax_enable_x64``.
    """
    k = estimate_mlp_kernels(x1, x2, depth=depth, activation=activation, W_std=W_std, b_std=b_std,
                             method=method, tile_size=tile_size, piece=piece, return_error=False)
    return k.nngp, k.ntk


def mlp_limit(
    x_train,
    y_train,
    x_test,
    *,
    depth: int,
    activation: str | Callable | Activation,
    W_std: float,
    b_std: float,
    learning_rate: float,
    method: str = "auto",
    tile_size: int = DEFAULT_TILE,
    kernel_errors: bool = True,
) -> KernelLimit:
    """The infinite-ensemble, infinite-width prediction of a depth-L network trained
    by gradient flow on the mean squared loss (docs/deep.md#what-the-limit-predicts, NT's convention).

    Args:
        x_train: training inputs (M, d).
        y_train: targets (M,) or (M, 1).
        x_test: test inputs (P, d), or None / an empty array for none.
        depth, activation, W_std, b_std: the network (see :func:`mlp_kernels`).
        learning_rate: η > 0; the flow is df/dt = −(η/M) Θ (f − y) on the training points.
        method: kernel evaluation method.
        tile_size: pairs per kernel tile side.
        kernel_errors: also compute the kernels' error bounds (their maximum is
            the limit's ``kernel_error``).

    Returns:
        A :class:`~jaxlimit.limits.kernel_limit.KernelLimit` on the M + P points,
        training first; ``predict(times)`` gives the Gaussian law at each time.
    """
    xa = check_points(x_train, "x_train")
    y = check_targets(y_train, xa.shape[0])
    xb = check_test_points(x_test, xa)
    lr = require_real(learning_rate, "learning_rate")
    x = np.concatenate([xa, xb])
    k = estimate_mlp_kernels(x, None, depth=depth, activation=activation, W_std=W_std, b_std=b_std,
                             method=method, tile_size=tile_size, return_error=kernel_errors)
    # Symmetric by construction up to rounding; the limit wants exactly symmetric matrices.
    nngp, ntk = 0.5 * (k.nngp + k.nngp.T), 0.5 * (k.ntk + k.ntk.T)
    described = {"model": {"model": "mlp", "parameterisation": "ntk", "depth": check_depth(depth),
                           "activation": get_activation(activation).name, "W_std": float(W_std),
                           "b_std": float(b_std)}}
    return KernelLimit(nngp, ntk, y, lr, kernel_error=k.max_error, kernel_method=k.method, describes=described)


__all__ = ["DEFAULT_TILE", "MLPKernels", "check_depth", "check_points", "check_scales", "check_test_points",
           "estimate_mlp_kernels", "mlp_kernels", "mlp_limit"]
