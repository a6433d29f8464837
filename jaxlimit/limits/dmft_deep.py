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

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

import numpy as np
from scipy.linalg import solve_triangular

from jaxlimit.activations import get_activation
from jaxlimit.config import physical_memory_bytes, require_real
from jaxlimit.errors import InputError
from jaxlimit.limits.dmft import check_gamma0, check_problem, check_sampling
from jaxlimit.limits.gaussian_expectations import require_x64
from jaxlimit.limits.mlp import check_depth

MEMORY_FRACTION = 0.25
"""A solve that would need more than this fraction of the machine's memory is refused."""

MAX_GRID = 4000
"""The largest (steps + 1) × points the solver accepts: its matrices are that size squared."""


class DeepDMFT(NamedTuple):
    """The infinite-width DMFT of a deep μP network on the step grid t_k = k dt, k = 0..K."""

    times: np.ndarray  # (K+1,) t_k = k dt
    mean: np.ndarray  # (K+1, M) f at every step, training points first
    mean_se: np.ndarray  # (K+1, M) its Monte Carlo standard error (zeros when solved exactly)
    ntk: np.ndarray  # (K+1, M, M) the network's NTK at every step
    ntk_se: np.ndarray  # (K+1, M, M)
    phi: np.ndarray  # (L, K+1, M, M) equal-step feature kernels Φ^ℓ(k, k), ℓ = 1..L
    grad: np.ndarray  # (L, K+1, M, M) equal-step gradient kernels G^ℓ(k, k), ℓ = 1..L
    sweeps: int  # layer sweeps, all horizons together (the most over replicas)
    exact: bool  # solved by linear algebra (φ = identity) or sampled

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


KINKED = ("relu", "leaky_relu", "abs")
"""Activations whose φ′ jumps: g = φ′(h)z is then discontinuous in the sources, and a pathwise
derivative misses the jumps' share of the responses, so the sampled solver refuses them."""

TANGENT_CHUNK = 32
"""Response columns pushed through the linearised site process at once (memory: sites × chunk × grid)."""


def _sampled_layer(act):
    """One layer's site process sampled on S sites (rows of the sources u, r), time-stepped causally, and its
    responses as derivatives of the sample means with respect to a shift common to every site:
    ⟨∂F/∂r⟩ = ∂⟨F(u, r + d)⟩/∂d at d = 0, exact for the sample (forward mode; φ must be smooth)."""

    def fields(u, r, a, b, m):
        s, n = u.shape

        def step(k, carry):
            phis, gs, zs = carry
            rows = jax.lax.dynamic_slice(a, (k * m, 0), (m, n))
            h = jax.lax.dynamic_slice(u, (0, k * m), (s, m)) + gs @ rows.T
            phis = jax.lax.dynamic_update_slice(phis, act.fn(h), (0, k * m))
            rows = jax.lax.dynamic_slice(b, (k * m, 0), (m, n))
            z = jax.lax.dynamic_slice(r, (0, k * m), (s, m)) + phis @ rows.T
            gs = jax.lax.dynamic_update_slice(gs, act.derivative(h) * z, (0, k * m))
            return phis, gs, jax.lax.dynamic_update_slice(zs, z, (0, k * m))

        zero = jnp.zeros_like(u)
        return jax.lax.fori_loop(0, n // m, step, (zero, zero, zero))

    @functools.partial(jax.jit, static_argnums=4)
    def solve(u, r, a, b, m):
        n = u.shape[1]
        means = lambda du, dr: tuple(jnp.mean(v, axis=0) for v in fields(u + du, r + dr, a, b, m)[:2])  # noqa: E731
        phis, gs, zs = fields(u, r, a, b, m)
        _, tangent = jax.linearize(means, jnp.zeros(n), jnp.zeros(n))
        chunks = -(-n // TANGENT_CHUNK)
        basis = jnp.zeros((chunks * TANGENT_CHUNK, n)).at[:n].set(jnp.eye(n)).reshape(chunks, TANGENT_CHUNK, n)
        none = jnp.zeros(n)
        # Column j of a response is the tangent along e_j.
        resp_phi = jax.lax.map(jax.vmap(lambda e: tangent(none, e)[0]), basis).reshape(-1, n)[:n].T
        resp_grad = jax.lax.map(jax.vmap(lambda e: tangent(e, none)[1]), basis).reshape(-1, n)[:n].T
        s = phis.shape[0]
        return phis.T @ phis / s, gs.T @ gs / s, resp_phi, resp_grad, jnp.mean(zs * phis, axis=0)

    return solve


def _cholesky(cov: np.ndarray) -> np.ndarray:
    """A lower-triangular L with L Lᵀ = cov + ε·max diag·I, ε = 10⁻¹² (more only where rounding makes a
    semi-definite cov fail): continuous in cov, so the sweeps settle, and causal: the sources' first k
    steps use the first k steps of the noise."""
    sym = 0.5 * (cov + cov.T)
    scale = max(float(np.max(np.diag(sym))), np.finfo(float).tiny)
    for eps in (1e-12, 1e-10, 1e-8):
        try:
            return np.linalg.cholesky(sym + eps * scale * np.eye(sym.shape[0]))
        except np.linalg.LinAlgError:
            continue
    raise FloatingPointError("a DMFT kernel is not positive semi-definite (the iteration diverged)")


def _ntk(layers: list[_Layer], kx: np.ndarray, steps: int, m: int) -> np.ndarray:
    """Σ_{ℓ=0}^{L} G^{ℓ+1}(k, k) ⊙ Φ^ℓ(k, k) with Φ⁰ = K_x and G^{L+1} = 1."""
    phis = [np.broadcast_to(kx, (steps, m, m))] + [_equal_step(l.phi, steps, m) for l in layers]
    grads = [_equal_step(l.grad, steps, m) for l in layers] + [np.ones((steps, m, m))]
    return sum(g * p for g, p in zip(grads, phis))


def _embed(prefix: np.ndarray, steps: int, m: int) -> np.ndarray:
    """A kernel on fewer steps extended to ``steps`` steps by holding its last step (positive semi-definite
    when the prefix is)."""
    known = prefix.shape[0] // m
    idx = (np.minimum(np.arange(steps), known - 1)[:, None] * m + np.arange(m)[None, :]).reshape(-1)
    return prefix[np.ix_(idx, idx)]


def _pad(prefix: np.ndarray, n: int) -> np.ndarray:
    """A response on fewer steps, zero beyond them."""
    out = np.zeros((n, n))
    out[:prefix.shape[0], :prefix.shape[1]] = prefix
    return out


def _solve(kx: np.ndarray, y: np.ndarray, n_train: int, depth: int, gamma0: float, step: float, steps: int,
           layer, start: tuple[np.ndarray, list] | None = None, tol: float = 1e-12):
    """The alternating procedure on ``steps`` steps: sweep the layers upwards, recompute f and Δ, until f
    stops changing. ``step`` is η dt; ``start`` a solution (f, layers) on fewer steps, which by causality is
    already exact there. ``layer(ℓ, below, resp_below, above, resp_above, Δ, c, strict, steps, M)`` solves one
    layer (ℓ = 0 is the first). Returns f (K+1, M), the layers and the number of sweeps."""
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
        layers = [_Layer(below0, zero, _embed(l.grad, steps, m), _pad(l.resp_grad, n), f) for l in known]
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
            new.append(layer(ell, below, resp_below, above, resp_above, delta, c, strict, steps, m))
        # f and every kernel must settle: the kernels at the last step act on no f inside the horizon.
        change = max(float(np.max(np.abs(b.grad - a.grad))) for a, b in zip(layers, new))
        layers = new
        f_new = layers[-1].readout / gamma0
        change = max(change, float(np.max(np.abs(f_new - f))))
        f = f_new
        if not np.all(np.isfinite(f)):
            raise FloatingPointError("the DMFT iteration produced non-finite outputs")
        if change <= tol * max(1.0, float(np.max(np.abs(f)))):
            break
    return f, layers, sweep


def _solve_growing(kx, y, n_train, depth, gamma0, step, steps, layer, tol: float = 1e-12, first: int = 8):
    """:func:`_solve` on a horizon that doubles from ``first`` steps, each solve started from the last: from
    the lazy start the iteration can diverge on a long horizon, where the kernels have moved far."""
    horizon, start, total = min(first, steps), None, 0
    while True:
        f, layers, sweeps = _solve(kx, y, n_train, depth, gamma0, step, horizon, layer, start, tol)
        total += sweeps
        if horizon == steps:
            return f, layers, total
        horizon, start = min(2 * horizon, steps), (f, layers)


def _sampled_layer_fn(act, kx: np.ndarray, depth: int, noise: list[tuple[np.ndarray, np.ndarray]]):
    """The layer callback of :func:`_solve` for a sampled site process; ``noise[ℓ]`` = (ξ, ζ), each
    (S/2, (K+1)M) standard normal, turned into the sources by causal Cholesky factors, in antithetic pairs
    (u, r), (u, −r). Layer 1's u is constant in time (u ~ N(0, K_x)) and the top layer's r is w^L(0)."""
    solve = _sampled_layer(act)
    root_x = _cholesky(kx)

    def layer(ell, below, resp_below, above, resp_above, delta, c, strict, steps, m):
        n = steps * m
        xi, zeta = noise[ell]
        a, b = _operators(below, resp_below, above, resp_above, delta, c, strict)
        u = np.tile(xi[:, :m] @ root_x.T, (1, steps)) if ell == 0 else xi[:, :n] @ _cholesky(below).T
        r = np.tile(zeta[:, :1], (1, n)) if ell == depth - 1 else zeta[:, :n] @ _cholesky(above).T
        phi, grad, resp_phi, resp_grad, readout = (np.asarray(v) for v in solve(
            jnp.asarray(np.concatenate([u, u])), jnp.asarray(np.concatenate([r, -r])), jnp.asarray(a),
            jnp.asarray(b), m))
        return _Layer(0.5 * (phi + phi.T), resp_phi, 0.5 * (grad + grad.T), resp_grad, readout.reshape(steps, m))

    return layer


def deep_dmft(x_train, y_train, x_test, *, depth: int, activation, gamma0: float, time_step: float, t_max: float,
              learning_rate: float = 1.0, samples: int = 2000, replicas: int = 4, seed: int = 0) -> DeepDMFT:
    """The infinite-width DMFT of a depth-L μP network trained by Euler steps dt up to t_max (module docstring).

    Args:
        x_train: training inputs (P, D).
        y_train: targets (P,).
        x_test: test inputs (Q, D), or None.
        depth: L ≥ 1 hidden layers.
        activation: φ: ``"identity"`` is solved exactly; a smooth φ (tanh, erf, sigmoid, gelu, sin, cos, a
            callable) by sampling sites; a kinked one (relu, leaky relu, abs) is refused.
        gamma0: γ₀ > 0.
        time_step: dt > 0, the step of the networks' training (and of the grid).
        t_max: the last time; the grid is t_k = k dt, k = 0..round(t_max/dt).
        learning_rate: η > 0; the steps are η dt long in the flow's time.
        samples: sites per layer (an even number; sampled φ only).
        replicas: independent solves whose spread gives the Monte Carlo standard errors (sampled φ only).
        seed: the sampling seed.

    Returns:
        :class:`DeepDMFT`: f, the NTK and the equal-step kernels Φ^ℓ, G^ℓ at every step, with the Monte
        Carlo standard errors of f and the NTK (zero for φ = identity).
    """
    depth = check_depth(depth)
    act = get_activation(activation)
    g0 = check_gamma0(gamma0)
    dt = require_real(time_step, "time_step")
    tm = require_real(t_max, "t_max")
    lr = require_real(learning_rate, "learning_rate")
    xa, y, xb = check_problem(x_train, y_train, x_test)
    exact = act.name == "identity"
    if act.name.startswith(KINKED):
        raise InputError(f"deep_dmft needs a smooth activation (φ′ without jumps), got {act.name!r}; "
                         "two_layer_single_site covers depth 1 with any activation")
    if not exact:
        require_x64("the sampled DMFT's kernels")
        check_sampling(samples, replicas)
        if samples % 2:
            raise InputError(f"samples must be even (antithetic pairs), got {samples}")
    steps = int(round(tm / dt)) + 1
    x = np.concatenate([xa, xb])
    m = x.shape[0]
    n = steps * m
    if n > MAX_GRID:
        raise InputError(f"the DMFT grid has {steps} steps × {m} points = {n} > {MAX_GRID}; use a larger time_step, "
                         "a smaller t_max or fewer points")
    need = 8.0 * n * n * (8 * depth + 12) + (0.0 if exact else 8.0 * samples * n * (3 * TANGENT_CHUNK + 8))
    if need > MEMORY_FRACTION * physical_memory_bytes():
        raise InputError(f"the DMFT solve needs about {need / 2**30:.3g} GiB; use a larger time_step, a smaller "
                         "t_max or fewer points")
    kx = x @ x.T / x.shape[1]
    kx = 0.5 * (kx + kx.T)
    kernels = lambda layers: (np.stack([_equal_step(l.phi, steps, m) for l in layers]),  # noqa: E731
                              np.stack([_equal_step(l.grad, steps, m) for l in layers]))
    times = dt * np.arange(steps)
    if exact:
        f, layers, sweeps = _solve_growing(kx, y, xa.shape[0], depth, g0, lr * dt, steps,
                                           lambda ell, *rest: _linear_layer(*rest))
        ntk = _ntk(layers, kx, steps, m)
        return DeepDMFT(times, f, np.zeros_like(f), ntk, np.zeros_like(ntk), *kernels(layers), sweeps, True)
    rng = np.random.default_rng([seed, 0xD3F7])
    runs = []
    for _ in range(replicas):
        noise = [(rng.standard_normal((samples // 2, n)), rng.standard_normal((samples // 2, n))) for _ in range(depth)]
        layer = _sampled_layer_fn(act, kx, depth, noise)
        f, layers, sweeps = _solve_growing(kx, y, xa.shape[0], depth, g0, lr * dt, steps, layer, tol=1e-10)
        runs.append((f, _ntk(layers, kx, steps, m), *kernels(layers), sweeps))
    stack = lambda i: np.stack([r[i] for r in runs])  # noqa: E731
    se = lambda v: v.std(axis=0, ddof=1) / np.sqrt(replicas)  # noqa: E731
    return DeepDMFT(times, stack(0).mean(0), se(stack(0)), stack(1).mean(0), se(stack(1)), stack(2).mean(0),
                    stack(3).mean(0), max(r[4] for r in runs), False)


__all__ = ["DeepDMFT", "deep_dmft"]
