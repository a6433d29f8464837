"""The DMFT of deep μP networks in discrete time, at any depth (docs/feature-learning.md, "Any depth").

The network and its training are those of :mod:`jaxlimit.limits.dmft` and
:class:`~jaxlimit.models.feature_mlp.FeatureMLP`: h¹ = W⁰x/√D, h^{ℓ+1} = W^ℓ φ(h^ℓ)/√N,
f = w^L·φ(h^L)/(γ₀N), every weight N(0, 1), trained by Euler steps of dθ/dt = −η γ₀² N ∇_θ L with step
dt (the engine's full-batch steps), so the limit here is that of the networks the engine trains, with
no time-discretisation error; dt → 0 is the gradient flow.

With g^ℓ = γ₀N ∂f/∂h^ℓ = φ′(h^ℓ) z^ℓ, z^ℓ = W^ℓᵀ g^{ℓ+1}/√N (z^L = w^L) and Δ_α(k) = (y_α − f_α(k))/P
(zero on test points), the fields of one site of layer ℓ at steps k = 0..K on the M points obey, at
infinite width (the single-site process of Bordelon & Pehlevan 2022, written for Euler steps),

    h^ℓ(k) = u^ℓ(k) + Σ_{j<k} [R_φ^{ℓ−1}(k, j) + c 1[j<k] Φ^{ℓ−1}(k, j) Δ(j)] g^ℓ(j),
    z^ℓ(k) = r^ℓ(k) + Σ_{j≤k} [R_g^{ℓ+1}(k, j) + c 1[j<k] G^{ℓ+1}(k, j) Δ(j)] φ(h^ℓ(j)),

with c = γ₀ η dt, u^ℓ ~ GP(0, Φ^{ℓ−1}) and r^ℓ ~ GP(0, G^{ℓ+1}) independent, the kernels
Φ^ℓ(k, j) = ⟨φ(h^ℓ(k)) φ(h^ℓ(j))ᵀ⟩, G^ℓ(k, j) = ⟨g^ℓ(k) g^ℓ(j)ᵀ⟩ and the responses
R_φ^ℓ = ⟨∂φ(h^ℓ)/∂r^ℓ⟩, R_g^ℓ = ⟨∂g^ℓ/∂u^ℓ⟩ (sample indices implicit: each is a matrix over
(step, point) pairs). The boundaries: Φ⁰ = K_x = XXᵀ/D at every pair of steps, R_φ⁰ = 0; G^{L+1} = 1,
R_g^{L+1} = 0 (r^L = w^L(0)). The output is f(k) = ⟨z^L(k) φ(h^L(k))⟩/γ₀ and the network's NTK at
step k is Σ_{ℓ=0}^{L} G^{ℓ+1}(k, k) ⊙ Φ^ℓ(k, k).

Linear networks (φ = identity): the site process is linear and Gaussian. With A and B the bracketed
operators (strictly lower block-triangular in the step index, so I − AB is unit lower triangular) and
M = (I − AB)⁻¹: h = M(u + A r), z = r + BM(u + A r), hence exactly

    Φ^ℓ = M(Φ^{ℓ−1} + A G^{ℓ+1} Aᵀ)Mᵀ,   R_φ^ℓ = MA,
    G^ℓ = (I + BMA) G^{ℓ+1} (I + BMA)ᵀ + BM Φ^{ℓ−1} (BM)ᵀ,   R_g^ℓ = BM.

Other activations need the responses of a sampled site process; they are not solved here yet (see
docs/feature-learning.md): the solver refuses them, and :func:`~jaxlimit.limits.dmft.two_layer_single_site`
covers depth 1 with any activation.

The layers are swept upwards and f, Δ recomputed until nothing changes (Bordelon &
Pehlevan's alternating procedure); by causality a sweep fixes at least one more step, so it ends. The
horizon doubles from a few steps, each solve started from the last one's (exact) solution.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import solve_triangular

from jaxlimit.activations import get_activation
from jaxlimit.config import physical_memory_bytes, require_real
from jaxlimit.errors import InputError
from jaxlimit.limits.kernel_limit import check_targets
from jaxlimit.limits.mlp import check_depth, check_points

MEMORY_FRACTION = 0.25
"""A solve that would need more than this fraction of the machine's memory is refused."""

MAX_GRID = 4000
"""The largest (steps + 1) × points the solver accepts: its matrices are that size squared."""


class DeepDMFT(NamedTuple):
    """The infinite-width DMFT of a deep μP network on the step grid t_k = k dt, k = 0..K."""

    times: np.ndarray  # (K+1,) t_k = k dt
    mean: np.ndarray  # (K+1, M) f at every step, training points first
    ntk: np.ndarray  # (K+1, M, M) the network's NTK at every step
    phi: np.ndarray  # (L, K+1, M, M) equal-step feature kernels Φ^ℓ(k, k), ℓ = 1..L
    grad: np.ndarray  # (L, K+1, M, M) equal-step gradient kernels G^ℓ(k, k), ℓ = 1..L
    sweeps: int  # layer sweeps, all horizons together

    def at(self, times) -> np.ndarray:
        """The step indices round(t/dt) of ``times`` (each must lie on the grid)."""
        dt = self.times[1] - self.times[0]
        t = np.asarray(times, np.float64).reshape(-1)
        k = np.rint(t / dt).astype(int)
        if np.any(k < 0) or np.any(k >= len(self.times)) or np.any(np.abs(k * dt - t) > 1e-9 * max(1.0, t.max())):
            raise InputError(f"times must be multiples of dt = {dt:g} in [0, {self.times[-1]:g}]")
        return k


def _equal_step(mat: np.ndarray, steps: int, m: int) -> np.ndarray:
    """The (k, k) blocks of a (K+1)M × (K+1)M matrix, shape (K+1, M, M)."""
    blocks = mat.reshape(steps, m, steps, m)
    return np.stack([blocks[k, :, k, :] for k in range(steps)])


class _Layer(NamedTuple):
    phi: np.ndarray  # Φ^ℓ
    resp_phi: np.ndarray  # R_φ^ℓ
    grad: np.ndarray  # G^ℓ
    resp_grad: np.ndarray  # R_g^ℓ
    readout: np.ndarray  # ⟨z^ℓ(k) φ(h^ℓ_μ(k))⟩, shape (K+1, M) (used at ℓ = L)


def _operators(below: np.ndarray, resp_below: np.ndarray, above: np.ndarray, resp_above: np.ndarray,
               delta: np.ndarray, c: float, strict: np.ndarray):
    """A = R_φ^{ℓ−1} + c 1[j<k] Φ^{ℓ−1} Δ(j) and B = R_g^{ℓ+1} + c 1[j<k] G^{ℓ+1} Δ(j)."""
    a = resp_below + c * below * strict * delta[None, :]
    b = resp_above + c * above * strict * delta[None, :]
    return a, b


def _linear_layer(below, resp_below, above, resp_above, delta, c, strict, steps, m) -> _Layer:
    """The exact Gaussian solution of one linear layer (module docstring)."""
    a, b = _operators(below, resp_below, above, resp_above, delta, c, strict)
    eye = np.eye(a.shape[0])
    inv = solve_triangular(eye - a @ b, eye, lower=True, unit_diagonal=True)
    ma, bm = inv @ a, b @ inv
    e = eye + bm @ a
    phi = inv @ (below + a @ above @ a.T) @ inv.T
    grad = e @ above @ e.T + bm @ below @ bm.T
    cross = e @ above @ ma.T + bm @ below @ inv.T  # ⟨z hᵀ⟩
    readout = np.diagonal(cross).reshape(steps, m)
    return _Layer(0.5 * (phi + phi.T), ma, 0.5 * (grad + grad.T), bm, readout)


def _ntk(layers: list[_Layer], kx: np.ndarray, steps: int, m: int) -> np.ndarray:
    """Σ_{ℓ=0}^{L} G^{ℓ+1}(k, k) ⊙ Φ^ℓ(k, k) with Φ⁰ = K_x and G^{L+1} = 1."""
    phis = [np.broadcast_to(kx, (steps, m, m))] + [_equal_step(l.phi, steps, m) for l in layers]
    grads = [_equal_step(l.grad, steps, m) for l in layers] + [np.ones((steps, m, m))]
    return sum(g * p for g, p in zip(grads, phis))


def _embed(prefix: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``fill`` with its top-left block replaced by ``prefix`` (a solution on fewer steps)."""
    out = fill.copy()
    out[:prefix.shape[0], :prefix.shape[1]] = prefix
    return out


def _solve(kx: np.ndarray, y: np.ndarray, n_train: int, depth: int, gamma0: float, step: float, steps: int,
           start: tuple[np.ndarray, list] | None = None):
    """The alternating procedure on ``steps`` steps: sweep the layers upwards, recompute f and Δ, until f
    stops changing. ``step`` is η dt; ``start`` a solution (f, layers) on fewer steps, which by causality is
    already exact there. Returns f (K+1, M), the layers and the number of sweeps."""
    m = kx.shape[0]
    n = steps * m
    strict = np.kron(np.tril(np.ones((steps, steps)), -1), np.ones((m, m)))
    below0 = np.kron(np.ones((steps, steps)), kx)
    top, zero = np.ones((n, n)), np.zeros((n, n))
    f = np.zeros((steps, m))
    layers = [_Layer(below0, zero, top, zero, f)] * depth  # the lazy start: nothing moves
    if start is not None:  # the known steps, and their last value held beyond them
        f_known, known = start
        f[:len(f_known)], f[len(f_known):] = f_known, f_known[-1]
        layers = [_Layer(below0, zero, _embed(l.grad, top), _embed(l.resp_grad, zero), f) for l in known]
    c = gamma0 * step
    # Causality: each sweep fixes at least one more step of every layer, so this many sweeps end it.
    max_sweeps = steps * depth + 2
    for sweep in range(1, max_sweeps + 1):
        delta = np.zeros((steps, m))
        delta[:, :n_train] = (y[None, :] - f[:, :n_train]) / n_train
        delta = delta.reshape(-1)
        new: list[_Layer] = []
        for ell in range(depth):
            below, resp_below = (below0, zero) if ell == 0 else (new[-1].phi, new[-1].resp_phi)
            above, resp_above = (top, zero) if ell == depth - 1 else (layers[ell + 1].grad, layers[ell + 1].resp_grad)
            new.append(_linear_layer(below, resp_below, above, resp_above, delta, c, strict, steps, m))
        # f and every kernel must settle: the kernels at the last step act on no f inside the horizon.
        change = max(float(np.max(np.abs(b.grad - a.grad))) for a, b in zip(layers, new))
        layers = new
        f_new = layers[-1].readout / gamma0
        change = max(change, float(np.max(np.abs(f_new - f))))
        f = f_new
        if not np.all(np.isfinite(f)):
            raise FloatingPointError("the DMFT iteration produced non-finite outputs")
        if change <= 1e-12 * max(1.0, float(np.max(np.abs(f)))):
            break
    return f, layers, sweep


def _solve_growing(kx, y, n_train, depth, gamma0, step, steps, first: int = 8):
    """:func:`_solve` on a horizon that doubles from ``first`` steps, each solve started from the last: from
    the lazy start the iteration can diverge on a long horizon, where the kernels have moved far."""
    horizon, start, total = min(first, steps), None, 0
    while True:
        f, layers, sweeps = _solve(kx, y, n_train, depth, gamma0, step, horizon, start)
        total += sweeps
        if horizon == steps:
            return f, layers, total
        horizon, start = min(2 * horizon, steps), (f, layers)


def deep_dmft(x_train, y_train, x_test, *, depth: int, activation, gamma0: float, time_step: float, t_max: float,
              learning_rate: float = 1.0) -> DeepDMFT:
    """The infinite-width DMFT of a depth-L μP network trained by Euler steps dt up to t_max (module docstring).

    Args:
        x_train: training inputs (P, D).
        y_train: targets (P,).
        x_test: test inputs (Q, D), or None.
        depth: L ≥ 1 hidden layers.
        activation: φ; ``"identity"`` (solved exactly; other activations are refused).
        gamma0: γ₀ > 0.
        time_step: dt > 0, the step of the networks' training (and of the grid).
        t_max: the last time; the grid is t_k = k dt, k = 0..round(t_max/dt).
        learning_rate: η > 0; the steps are η dt long in the flow's time.

    Returns:
        :class:`DeepDMFT`: f, the NTK and the equal-step kernels Φ^ℓ, G^ℓ at every step, exact (no
        Monte Carlo error).
    """
    depth = check_depth(depth)
    act = get_activation(activation)
    g0 = require_real(gamma0, "gamma0")
    dt = require_real(time_step, "time_step")
    tm = require_real(t_max, "t_max")
    lr = require_real(learning_rate, "learning_rate")
    xa = check_points(x_train, "x_train")
    y = check_targets(y_train, xa.shape[0])
    xb = np.zeros((0, xa.shape[1])) if x_test is None or np.size(x_test) == 0 else check_points(x_test, "x_test")
    if xb.shape[1] != xa.shape[1]:
        raise InputError(f"x_test has dimension {xb.shape[1]} but x_train has {xa.shape[1]}")
    if act.name != "identity":
        raise InputError(f"deep_dmft solves linear networks (activation='identity') so far, got {act.name!r}; "
                         "two_layer_single_site covers depth 1 with any activation")
    steps = int(round(tm / dt)) + 1
    x = np.concatenate([xa, xb])
    m = x.shape[0]
    n = steps * m
    if n > MAX_GRID:
        raise InputError(f"the DMFT grid has {steps} steps × {m} points = {n} > {MAX_GRID}; use a larger time_step, "
                         "a smaller t_max or fewer points")
    need = 8.0 * n * n * (8 * depth + 12)
    if need > MEMORY_FRACTION * physical_memory_bytes():
        raise InputError(f"the DMFT solve needs about {need / 2**30:.3g} GiB; use a larger time_step, a smaller "
                         "t_max or fewer points")
    kx = x @ x.T / x.shape[1]
    kx = 0.5 * (kx + kx.T)
    f, layers, sweeps = _solve_growing(kx, y, xa.shape[0], depth, g0, lr * dt, steps)
    ntk = _ntk(layers, kx, steps, m)
    return DeepDMFT(dt * np.arange(steps), f, ntk,
                    np.stack([_equal_step(l.phi, steps, m) for l in layers]),
                    np.stack([_equal_step(l.grad, steps, m) for l in layers]), sweeps)


__all__ = ["DeepDMFT", "deep_dmft"]
