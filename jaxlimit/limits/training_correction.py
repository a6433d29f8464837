"""The first finite-width (1/n) correction of lazy training, estimated from networks (docs/corrections.md).

The network is the project's MLP in neural-tangents' "ntk" parameterisation (docs/deep.md), L hidden
layers of equal width n, trained by the engine's full-batch gradient descent on
L(θ) = (1/2M) Σ_μ (f(x_μ) − y_μ)² with θ ← θ − α dt ∇L (α the learning rate, dt the time step; K steps
reach t = K dt). At infinite width the outputs on all P points follow the linear recursion

    f_{k+1} = f_k − (α dt/M) Θ[:, train] (f_k[train] − y),      f_0 ~ N(0, K),

whose mean m̄_k and covariance Σ̄_k are exact (:attr:`TrainingCorrection.gd_mean`, ``gd_cov``); its
dt → 0 limit is the gradient flow that :func:`~jaxlimit.limits.mlp.mlp_limit` predicts. At width n

    E f_k = m̄_k + c_k/n + O(1/n²),      Cov f_k = Σ̄_k + C_k/n + O(1/n²).

The coefficients c_k, C_k come from the NTK's fluctuations, its motion (the dNTK) and the motion of
the dNTK (the ddNTKs) (Roberts, Yaida & Hanin 2022, ch. 11; Huang & Yau 2020). Their layer
recursions are not implemented; here they are estimated by Monte Carlo over networks of one
width n₀, in three exact pieces. For each network, with its own initial f_0 and empirical NTK Θ̂_0:

* the path p_k: the infinite-width recursion above started from the network's own f_0;
* the linearised network ℓ_k: the same recursion with Θ̂_0 in place of Θ (the network's first-order
  Taylor model, trained exactly);
* the λ-scaled models F^λ(θ) = f(θ_0) + [f(θ_0 + λΔ) − f(θ_0)]/λ trained in Δ from Δ = 0 (Chizat &
  Bach's lazy scaling): λ = 1 is the network itself, λ → 0 the linearised network, and
  F^λ_k = ℓ_k + λ a_k + λ² b_k + …, where a collects the dNTK's effect and b the ddNTKs' and the
  dNTK's second-order effect. The network (λ = 1) and its mirror (λ = −1) give, exactly,

      f_k − p_k = (ℓ_k − p_k) + (F¹_k − F⁻¹_k)/2 + [(F¹_k + F⁻¹_k)/2 − ℓ_k]
                =   "ntk"      +     "dntk" (a + …)  +      "ddntk" (b + …),

  whose means are each O(1/n) (the omitted higher odd and even orders are O(1/n²) in the mean).

c = n₀ · mean over networks of f_k − p_k, with each piece's share and standard error. The networks
come in antithetic pairs (the second with its readout layer negated, f_0 → −f_0, Θ̂_0 unchanged).
The covariance coefficient uses the exact initial one, Cov f_0 = K + δK/n (δK from
:func:`~jaxlimit.limits.corrections.mlp_corrections`), propagated by the recursion, plus the
coupled terms: C_k = A^k δK A^kᵀ + n₀ [E(u dᵀ + d uᵀ + d dᵀ) − E d E dᵀ], with u_k = A^k f_0 and
d_k = f_k − p_k. Being estimated at one width, the coefficients carry an O(1/n₀) relative bias of
their own (the O(1/n²) terms at n₀); docs/corrections.md measures it by comparing n₀ = 32 and 64.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation
from jaxlimit.errors import InputError
from jaxlimit.limits import gaussian_expectations as ge
from jaxlimit.limits.corrections import mlp_corrections, network_ntk
from jaxlimit.limits.kernel_limit import check_targets
from jaxlimit.limits.mlp import check_depth, check_points, check_scales, check_test_points, mlp_kernels
from jaxlimit.models.mlp import MLP
from jaxlimit.stats import Gaussian
from jaxlimit.validation import require_int, require_real

TERMS = ("ntk", "dntk", "ddntk")
"""The three pieces of the mean correction (module docstring)."""

MAX_STEPS = 20000
"""Gradient steps one estimate may take (t_max/dt)."""


@dataclasses.dataclass(frozen=True)
class TrainingCorrection:
    """The 1/n-corrected law of the outputs of width-n networks at the gradient steps k = 0..K.

    Attributes:
        times: k·dt, (K+1,).
        flow_mean: the gradient flow's infinite-width mean at those times (what ``mlp_limit`` predicts), (K+1, P).
        gd_mean, gd_cov: the infinite-width law under the gradient steps themselves, (K+1, P) and (K+1, P, P).
        shift, shift_se: c_k, the coefficient of 1/n in the mean, and its standard error, (K+1, P).
        terms, terms_se: c_k split into "ntk", "dntk", "ddntk" (module docstring), each (K+1, P).
        cov_shift: C_k, the coefficient of 1/n in the covariance, (K+1, P, P).
        width: n₀, the width the coefficients were estimated at.
        networks: the networks that entered (pairs with a diverged member are left out, both members).
        n_diverged: the networks left out.
        time_step: dt.
    """

    times: np.ndarray
    flow_mean: np.ndarray
    gd_mean: np.ndarray
    gd_cov: np.ndarray
    shift: np.ndarray
    shift_se: np.ndarray
    terms: dict
    terms_se: dict
    cov_shift: np.ndarray
    width: int
    networks: int
    n_diverged: int
    time_step: float

    def steps(self, times) -> np.ndarray:
        """The step of each time: round(t/dt), the step the engine saves for t; times beyond the
        last step are refused."""
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise InputError("times must be a 1-d array of finite numbers")
        k = np.rint(t / self.time_step).astype(int)
        if np.any(k < 0) or np.any(k >= len(self.times)):
            raise InputError(f"times must lie in [0, {self.times[-1]:g}], the steps this correction was computed for")
        return k

    def predict(self, times, width: int) -> Gaussian:
        """The law of width-``width`` networks at ``times``: N(m̄ + c/n, Σ̄ + C/n), the covariance's
        negative eigenvalues (a width too small for the expansion, or a noisy C) set to zero
        (:meth:`covariance_deficit` says by how much)."""
        n = require_int(width, "width", low=1)
        k = self.steps(times)
        lam, vec = np.linalg.eigh(self.gd_cov[k] + self.cov_shift[k] / n)
        cov = np.einsum("tij,tj,tkj->tik", vec, np.maximum(lam, 0.0), vec)
        return Gaussian(jnp.asarray(self.gd_mean[k] + self.shift[k] / n), jnp.asarray(0.5 * (cov + np.swapaxes(cov, 1, 2))))

    def covariance_deficit(self, times, width: int) -> float:
        """The most negative eigenvalue of Σ̄ + C/n over ``times`` (0 when every one is PSD): what
        :meth:`predict` sets to zero."""
        n = require_int(width, "width", low=1)
        k = self.steps(times)
        return float(min(np.linalg.eigvalsh(self.gd_cov[k] + self.cov_shift[k] / n).min(), 0.0))

    def drift(self, times, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The predicted mean of (network − its gradient-flow path), what ``jaxlimit deep`` reports as
        ``mean_drift``: m̄^steps − m̄^flow + c/n, and its standard error c_se/n; each (T, P)."""
        n = require_int(width, "width", low=1)
        k = self.steps(times)
        return self.gd_mean[k] - self.flow_mean[k] + self.shift[k] / n, self.shift_se[k] / n


def _check_size(value, name: str, low: int, high: int) -> int:
    v = require_int(value, name, low=low)
    if v > high:
        raise InputError(f"{name} must be at most {high}, got {v}")
    return v


def _pair(params):
    """The antithetic twin: the readout layer negated (f → −f, the NTK unchanged)."""
    last = params[-1]
    flipped = type(last)(-last.W, None if last.b is None else -last.b)
    return (*params[:-1], flipped)


def _pieces(model: MLP, x: jax.Array, y: jax.Array, ntk: jax.Array, alpha: float, steps: int,
            gd_mean: jax.Array):
    """For one network: (d, pieces, u) at every step — d = f − p, pieces (3, K+1, P), u = p − m̄ = A^k f_0."""
    m = y.shape[0]
    lr = model.learning_rates()
    rate = alpha * model.time_step / m
    tm = jax.tree_util.tree_map

    def descend(outputs: Callable, params0):
        def loss(p):
            return 0.5 * jnp.mean((outputs(p)[:m] - y) ** 2)

        def step(p, _):
            out = outputs(p)
            g = jax.grad(loss)(p)
            return tm(lambda a, l, b: a - alpha * l * b, p, lr, g), out

        p, outs = jax.lax.scan(step, params0, None, length=steps)
        return jnp.concatenate([outs, outputs(p)[None]])

    def kernel_steps(kernel, f0):
        def step(f, _):
            return f - rate * kernel[:, :m] @ (f[:m] - y), f

        f, outs = jax.lax.scan(step, f0, None, length=steps)
        return jnp.concatenate([outs, f[None]])

    def one(theta0):
        f0 = model.apply(theta0, x)
        real = descend(lambda p: model.apply(p, x), theta0)
        zero = tm(jnp.zeros_like, theta0)
        mirror = descend(lambda d: 2.0 * f0 - model.apply(tm(lambda a, b: a - b, theta0, d), x), zero)
        lin = kernel_steps(network_ntk(model, theta0, x), f0)
        path = kernel_steps(ntk, f0)
        pieces = jnp.stack([lin - path, 0.5 * (real - mirror), 0.5 * (real + mirror) - lin])
        return real - path, pieces, path - gd_mean

    return one


def mlp_training_correction(
    x_train,
    y_train,
    x_test,
    *,
    depth: int,
    activation: str | Callable | Activation,
    W_std: float,
    b_std: float,
    learning_rate: float,
    time_step: float,
    t_max: float,
    width: int = 64,
    networks: int = 2048,
    seed: int = 0,
    chunk: int = 128,
) -> TrainingCorrection:
    """Estimate the 1/n correction to the law of the trained outputs (module docstring) from
    ``networks`` networks of width ``width`` (antithetic pairs), trained by gradient descent with
    learning rate α = ``learning_rate`` and step dt = ``time_step`` up to ``t_max``, on the training
    points then ``x_test``. Same seed, same numbers, whatever ``chunk``.

    Raises:
        InputError: for malformed points or targets, a depth, scale, rate, step or time that is not
            positive and finite, more than 20000 steps, a width outside [2, 4096], an odd number of
            networks or fewer than 8, or without ``jax_enable_x64``.
    """
    ge.require_x64("the 1/n training correction")
    xa = check_points(x_train, "x_train")
    y = check_targets(y_train, xa.shape[0])
    xb = check_test_points(x_test, xa)
    L = check_depth(depth)
    w_std, b_std_ = check_scales(W_std, b_std)
    alpha = require_real(learning_rate, "learning_rate")
    dt = require_real(time_step, "time_step")
    t_end = require_real(t_max, "t_max")
    steps = int(round(t_end / dt))
    if steps < 1 or steps > MAX_STEPS:
        raise InputError(f"t_max/time_step must be between 1 and {MAX_STEPS} steps, got {t_end / dt:.4g}")
    n0 = _check_size(width, "width", 2, 4096)
    total = _check_size(networks, "networks", 8, 10 ** 7)
    if total % 2:
        raise InputError(f"networks must be even (antithetic pairs), got {total}")
    seed_ = require_int(seed, "seed", low=0)
    per_chunk = _check_size(chunk, "chunk", 1, 10 ** 6)

    x = np.concatenate([xa, xb])
    P = x.shape[0]
    model = MLP((n0,) * L, x.shape[1], activation, W_std=w_std, b_std=b_std_, time_step=dt)
    nngp, ntk = mlp_kernels(x, depth=L, activation=activation, W_std=w_std, b_std=b_std_)
    nngp, ntk = 0.5 * (nngp + nngp.T), 0.5 * (ntk + ntk.T)

    # The infinite-width law under the steps: f_{k+1} = A f_k + b.
    m = xa.shape[0]
    rate = alpha * dt / m
    A = np.eye(P)
    A[:, :m] -= rate * ntk[:, :m]
    b = rate * ntk[:, :m] @ y
    gd_mean, gd_cov, flow_mean = np.zeros((steps + 1, P)), np.zeros((steps + 1, P, P)), np.zeros((steps + 1, P))
    gd_cov[0] = nngp
    powers = np.zeros((steps + 1, P, P))
    powers[0] = np.eye(P)
    for k in range(steps):
        gd_mean[k + 1] = A @ gd_mean[k] + b
        gd_cov[k + 1] = A @ gd_cov[k] @ A.T
        powers[k + 1] = A @ powers[k]
    flow_mean[:] = _flow_mean(ntk, y, alpha, dt * np.arange(steps + 1))
    shift_k = _nngp_shift(x, depth=L, activation=activation, W_std=w_std, b_std=b_std_)

    one = jax.vmap(_pieces(model, jnp.asarray(x), jnp.asarray(y), jnp.asarray(ntk), alpha, steps,
                           jnp.asarray(gd_mean)))

    def pairs_of(keys):
        theta = jax.vmap(lambda k: model.init(k, jnp.float64))(keys)
        both = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), theta, jax.vmap(_pair)(theta))
        d, pieces, u = one(both)
        second = (jnp.einsum("ekp,ekq->ekpq", u, d) + jnp.einsum("ekp,ekq->ekpq", d, u)
                  + jnp.einsum("ekp,ekq->ekpq", d, d))
        half = keys.shape[0]
        ok = jnp.all(jnp.isfinite(d), axis=(1, 2))
        ok = ok[:half] & ok[half:]

        def mean(a):
            a = 0.5 * (a[:half] + a[half:])
            return jnp.where(ok.reshape((-1,) + (1,) * (a.ndim - 1)), a, 0.0)

        return ok, mean(d), mean(pieces), mean(second)

    batch = jax.jit(pairs_of)
    base = jax.random.PRNGKey(seed_)
    pairs = total // 2
    n_ok = 0
    s_d = np.zeros((steps + 1, P))
    s_dd = np.zeros((steps + 1, P))
    s_p = np.zeros((3, steps + 1, P))
    s_pp = np.zeros((3, steps + 1, P))
    s_second = np.zeros((steps + 1, P, P))
    for lo in range(0, pairs, per_chunk):
        keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(lo, min(lo + per_chunk, pairs)))
        ok, d, pieces, second = (np.asarray(a) for a in batch(keys))
        n_ok += int(ok.sum())
        s_d += d.sum(0)
        s_dd += (d ** 2).sum(0)
        s_p += pieces.sum(0)
        s_pp += (pieces ** 2).sum(0)
        s_second += second.sum(0)
    if n_ok < 2:
        raise InputError("fewer than two pairs of networks trained without diverging: reduce the step or the rate")

    def mean_se(s, ss):
        mean = s / n_ok
        return mean, np.sqrt(np.maximum(ss / n_ok - mean ** 2, 0.0) / (n_ok - 1))

    d_mean, d_se = mean_se(s_d, s_dd)
    p_mean, p_se = mean_se(s_p, s_pp)
    moments = s_second / n_ok - np.einsum("kp,kq->kpq", d_mean, d_mean)
    cov_shift = np.einsum("kab,bc,kdc->kad", powers, shift_k, powers) + n0 * moments
    return TrainingCorrection(
        times=dt * np.arange(steps + 1), flow_mean=flow_mean, gd_mean=gd_mean, gd_cov=gd_cov,
        shift=n0 * d_mean, shift_se=n0 * d_se,
        terms={name: n0 * p_mean[i] for i, name in enumerate(TERMS)},
        terms_se={name: n0 * p_se[i] for i, name in enumerate(TERMS)},
        cov_shift=0.5 * (cov_shift + np.swapaxes(cov_shift, 1, 2)), width=n0, networks=2 * n_ok,
        n_diverged=total - 2 * n_ok, time_step=dt)


def _nngp_shift(x: np.ndarray, **network) -> np.ndarray:
    """δK (P, P) pair by pair: δK_ab's recursion involves only the entries of inputs a and b (G_ab
    depends on K_aa, K_ab, K_bb), so two-input corrections give every entry, where one call on all
    P inputs would carry the P⁴ vertex."""
    P = x.shape[0]
    out = np.zeros((P, P))
    for a in range(P):
        for b in range(a + 1, max(a + 2, P)):
            idx = [a, b] if b < P else [a]
            shift = mlp_corrections(x[idx], **network).nngp_shift
            out[a, a] = shift[0, 0]
            if b < P:
                out[a, b] = out[b, a] = shift[0, 1]
                out[b, b] = shift[1, 1]
    return out


def _flow_mean(ntk: np.ndarray, y: np.ndarray, alpha: float, times: np.ndarray) -> np.ndarray:
    """The gradient flow's infinite-width mean from f_0 = 0 (mean 0): train points relax as
    (I − e^{−(α/M)Θ t}) y, test points follow Θ_test,train Θ_train⁻¹ of the same (the closed form)."""
    from jaxlimit.limits.kernel_limit import flow_moments

    m = y.shape[0]
    mean, _ = flow_moments(jnp.asarray(np.zeros_like(ntk)), jnp.asarray(ntk), jnp.asarray(y), alpha / m,
                           np.asarray(times))
    return np.asarray(mean)


__all__ = ["TERMS", "TrainingCorrection", "mlp_training_correction"]
