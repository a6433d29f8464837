"""The feature-learning (μP, strength γ₀) limit by dynamical mean-field theory (docs/feature-learning.md).

The network (Bordelon & Pehlevan 2022), every weight N(0, 1), L hidden layers of width N:

    h¹ = W⁰x/√D,    h^{ℓ+1} = W^ℓ φ(h^ℓ)/√N,    f = w^L·φ(h^L)/(γ₀N),

trained by the gradient flow dθ/dt = −η γ₀² N ∇_θ L, L = (1/2P) Σ_μ (f(x_μ) − y_μ)² over the P
training points (η the learning rate; η only rescales time, t → ηt).

Two-layer linear networks (L = 1, φ = identity) close exactly, at any width N, in the outputs f on
all M points (training first), the feature kernel H(x, x′) = (1/N) Σ_i h_i(x) h_i(x′) and the
read-out kernel G = (1/N) Σ_i a_i². With K_x = XXᵀ/D and Δ_μ = (y_μ − f_μ)/P:

    df(x)/dt   = η Σ_μ [H(x, x_μ) + G K_x(x, x_μ)] Δ_μ,
    dH(x,x′)/dt = η γ₀² [f(x′)(K_xΔ)(x) + f(x)(K_xΔ)(x′)],
    dG/dt      = 2η γ₀² Σ_μ Δ_μ f_μ.

(da_i/dt = γ₀ Σ_μ Δ_μ h_i(x_μ), dh_i(x)/dt = γ₀ a_i (K_xΔ)(x), and (1/N)Σ_i a_i h_i = γ₀ f.)
The evolving NTK is K(t) = H + G K_x; γ₀ → 0 freezes H = K_x, G = 1, the lazy NTK 2K_x of
``mlp_limit(W_std=1, b_std=0)``.

Infinite width: f₀ = 0, H₀ = K_x, G₀ = 1, and the solution of the system is the DMFT mean.
Width N: the initial state fluctuates by O(N^{-1/2}), with (√N times) f₀ ~ N(0, K_x/γ₀²),
δH₀ a centred Wishart fluctuation, Cov(H(a,b), H(c,d)) = (K_ac K_bd + K_ad K_bc)/N, and
G₀ ~ χ²_N/N, Var = 2/N, the three uncorrelated. Propagated by the tangent (linearised) flow
J(t) = ∂y(t)/∂y₀ they give the leading covariance Cov f(t) = J_f(t) Σ₀ J_f(t)ᵀ + O(N^{-2}):
third moments of the initial state are O(N^{-2}), so the linear propagation is the whole O(1/N)
term (Bordelon & Pehlevan 2023). The mean's own O(1/N) shift is not part of the prediction.

Σ₀ is carried as a square-root factor (one tangent per column): with K_x = Σ_k l_k l_kᵀ
(l_k = √λ_k u_k over the nonzero eigenvalues, r of them) and h = Σ_k z_k l_k, z ~ N(0, I_r),
√N δH₀ = Σ_k (z_k² − 1) l_k l_kᵀ + Σ_{j<k} z_j z_k (l_j l_kᵀ + l_k l_jᵀ), a sum over r(r+1)/2
uncorrelated unit-variance coefficients with columns √2 l_k l_kᵀ and l_j l_kᵀ + l_k l_jᵀ; f₀ has
the columns l_k/γ₀ and G₀ the column √2. The tangents solve d(δy)/dt = ∂F(y)·δy (``jax.jvp`` of
the field), integrated together with y by :func:`~jaxlimit.limits._ode.solve_ode`. The second
variations w_k (dw/dt = ∂F w + ∂²F[v_k, v_k], w(0) = 0) give the mean's O(1/N) shift
(1/2N) Σ_k w_k,f (:meth:`TwoLayerLinearDMFT.mean_correction`), which ``predict`` leaves out.

One training point with |x|²/D = 1: K = H + G obeys d(K² − 4γ₀²f²)/dt = 0, so at infinite width
K = 2√(1 + γ₀²f²) and df/dt = 2√(1 + γ₀²f²)(y − f), whose solution is the closed form
:func:`one_point_time` (t as a function of f).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import get_activation
from jaxlimit.config import physical_memory_bytes, require_real
from jaxlimit.errors import InputError
from jaxlimit.limits._ode import check_times, solve_ode
from jaxlimit.limits.base import GRADIENT_FLOW, Limit
from jaxlimit.limits.gaussian_expectations import require_x64
from jaxlimit.limits.kernel_limit import check_targets
from jaxlimit.limits.mlp import check_depth, check_points, check_test_points
from jaxlimit.stats.gaussian import Gaussian

MEMORY_FRACTION = 0.25
"""A solve whose tangent state would need more than this fraction of the machine's memory is refused."""


class LinearState(NamedTuple):
    """The closed state of a two-layer linear network on M points."""

    f: jax.Array  # (M,) outputs
    H: jax.Array  # (M, M) feature kernel (1/N) Σ h_i h_iᵀ
    G: jax.Array  # () read-out kernel (1/N) Σ a_i²


class DMFTKernels(NamedTuple):
    """The kernels along the DMFT mean at T times (two-layer linear)."""

    times: np.ndarray  # (T,)
    H: np.ndarray  # (T, M, M) feature kernel Φ¹(t, t)
    G: np.ndarray  # (T,) gradient kernel G²(t, t)
    ntk: np.ndarray  # (T, M, M) evolving NTK H + G K_x
    ntk_var: np.ndarray | None  # (T, M, M) leading variance of each NTK entry at the limit's width


def linear_field(t, y: LinearState, args) -> LinearState:
    """The two-layer linear flow (module docstring) with args = (K_x (M, M), Y (P,), γ₀², η)."""
    kx, y_train, g2, eta = args
    p = y_train.shape[0]
    delta = (y_train - y.f[:p]) / p
    kd = kx[:, :p] @ delta
    df = y.H[:, :p] @ delta + y.G * kd
    dH = g2 * (jnp.outer(kd, y.f) + jnp.outer(y.f, kd))
    dG = 2.0 * g2 * jnp.dot(delta, y.f[:p])
    return LinearState(eta * df, eta * dH, eta * dG)


def initial_factor(kx: np.ndarray, gamma0: float, rtol: float = 1e-12) -> LinearState:
    """Columns V_k (stacked on a leading axis) with Σ_k V_k V_kᵀ = N × Cov of the initial state (module docstring)."""
    lam, u = np.linalg.eigh(0.5 * (kx + kx.T))
    live = lam > rtol * max(float(lam[-1]), np.finfo(float).tiny)
    l = u[:, live] * np.sqrt(lam[live])  # (M, r)
    m, r = l.shape
    cols_f = [LinearState(l[:, k] / gamma0, np.zeros((m, m)), np.zeros(())) for k in range(r)]
    cols_h = []
    for j in range(r):
        for k in range(j, r):
            a = np.outer(l[:, j], l[:, k])
            h = math.sqrt(2.0) * a if j == k else a + a.T
            cols_h.append(LinearState(np.zeros(m), h, np.zeros(())))
    cols_g = [LinearState(np.zeros(m), np.zeros((m, m)), np.asarray(math.sqrt(2.0)))]
    cols = cols_f + cols_h + cols_g
    return jax.tree_util.tree_map(lambda *a: jnp.asarray(np.stack(a)), *cols)


def tangent_count(rank: int) -> int:
    """r + r(r+1)/2 + 1 tangents for a K_x of rank r."""
    return rank + rank * (rank + 1) // 2 + 1


def tangent_bytes(n_points: int, rank: int, n_times: int) -> int:
    """A conservative estimate of the memory of the tangent solve (about 12 copies of the state and the saves)."""
    state = n_points * n_points + n_points + 1
    n = 2 * tangent_count(rank) + 1
    return 8 * n * (12 * state + n_times * (n_points * n_points + n_points + 1))


def _tangent_field(t, state, args):
    """The flow y, its first variations v (dv/dt = ∂F(y)v) and second variations w along each v
    (dw/dt = ∂F(y)w + ∂²F(y)[v, v]), for every column of the initial factor."""
    y, v, w = state
    field = lambda z: linear_field(t, z, args)  # noqa: E731

    def one(dv, dw):
        dF = lambda z: jax.jvp(field, (z,), (dv,))[1]  # noqa: E731
        first, second = jax.jvp(dF, (y,), (dv,))
        return first, jax.tree_util.tree_map(jnp.add, jax.jvp(field, (y,), (dw,))[1], second)

    dv, dw = jax.vmap(one)(v, w)
    return field(y), dv, dw


def _batched_field(t, states, args):
    return jax.vmap(lambda z: linear_field(t, z, args))(states)


def _save_outputs(t, state, args):
    y, v, w = state
    return {"f": y.f, "H": y.H, "G": y.G, "vf": v.f, "wf": w.f}


def _save_with_kernels(t, state, args):
    y, v, w = state
    ntk = lambda s: s.H + s.G[:, None, None] * args[0][None]  # noqa: E731
    return {"f": y.f, "H": y.H, "G": y.G, "vf": v.f, "wf": w.f, "vntk": ntk(v), "wntk": ntk(w)}


class TwoLayerLinearDMFT(Limit):
    """The DMFT mean and leading finite-width covariance of a two-layer linear μP network (module docstring).

    Attributes:
        kx: K_x = XXᵀ/D on all M points, training first, float64 (M, M).
        y_train: Y, shape (P,).
        gamma0: γ₀ > 0.
        width: N, the width whose O(1/N) covariance ``predict`` returns.
        learning_rate: η > 0.
    """

    kx: jax.Array
    y_train: jax.Array
    gamma0: float
    width: int
    learning_rate: float = 1.0

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.kx.shape[0])

    @property
    def assumptions(self) -> dict:
        return {"model": {"model": "feature_mlp", "depth": 1, "activation": "identity", "gamma0": self.gamma0,
                          "width": self.width},
                "trainer": {"method": GRADIENT_FLOW}}

    def _args(self):
        # Arrays, not Python floats: diffrax's jit then compiles once per shape, not once per γ₀.
        return (self.kx, self.y_train, jnp.asarray(self.gamma0 ** 2), jnp.asarray(float(self.learning_rate)))

    def initial_state(self) -> LinearState:
        """The infinite-width initial state: f₀ = 0, H₀ = K_x, G₀ = 1."""
        return LinearState(jnp.zeros(self.n_points), self.kx, jnp.asarray(1.0))

    def mean_path(self, times) -> LinearState:
        """The DMFT mean state (f, H, G) at ``times``, each leaf with a leading axis T."""
        require_x64("the DMFT limit")
        t = check_times(times)
        return solve_ode(linear_field, self.initial_state(), t, args=self._args(), steps_option="the largest time")

    def _solve_tangents(self, times, with_kernels: bool):
        require_x64("the DMFT limit")
        t = check_times(times)
        rank = int(np.linalg.matrix_rank(np.asarray(self.kx), hermitian=True))
        need = tangent_bytes(self.n_points, rank, len(t))
        if need > MEMORY_FRACTION * physical_memory_bytes():
            raise InputError(f"the finite-width covariance on {self.n_points} points and {len(t)} times needs "
                             f"about {need / 2**30:.3g} GiB; use fewer points or times")
        factor = initial_factor(np.asarray(self.kx), self.gamma0)
        args = self._args()
        zero = jax.tree_util.tree_map(jnp.zeros_like, factor)
        return solve_ode(_tangent_field, (self.initial_state(), factor, zero), t, args=args,
                         save=_save_with_kernels if with_kernels else _save_outputs,
                         steps_option="the largest time")

    def predict(self, times) -> Gaussian:
        """The law of width-N outputs at ``times``: mean the DMFT mean f(t) (T, M), covariance
        J_f Σ₀ J_fᵀ / N (T, M, M), the leading finite-width covariance."""
        out = self._solve_tangents(times, with_kernels=False)
        vf = out["vf"]  # (T, n_tan, M)
        cov = jnp.einsum("tki,tkj->tij", vf, vf) / self.width
        return Gaussian(out["f"], 0.5 * (cov + jnp.swapaxes(cov, 1, 2)))

    def mean_correction(self, times) -> jax.Array:
        """The O(1/N) shift of the mean at width N, (1/2N) Σ_k ∂²f(t)[v_k, v_k] over the columns v_k
        of the initial factor (E δy₀ = 0 and third moments are O(N⁻²)), shape (T, M). The mean of
        width-N networks is ``predict(times).mean + mean_correction(times)`` + O(N⁻²)."""
        out = self._solve_tangents(times, with_kernels=False)
        return 0.5 * jnp.sum(out["wf"], axis=1) / self.width

    def sample_initial_states(self, key: jax.Array, n: int) -> LinearState:
        """n exact draws of a width-N network's initial (f₀, H₀, G₀): h_i ~ N(0, K_x) and a_i ~ N(0, 1)
        for i = 1..N, f₀ = Σ a_i h_i/(γ₀N), H₀ = Σ h_i h_iᵀ/N, G₀ = Σ a_i²/N. Leaves with a leading axis n."""
        lam, u = np.linalg.eigh(np.asarray(self.kx))
        root = jnp.asarray(u * np.sqrt(np.clip(lam, 0.0, None)))  # K_x = root rootᵀ
        m, big_n = self.n_points, self.width

        def one(k):
            kz, ka = jax.random.split(k)
            h = jax.random.normal(kz, (big_n, m), jnp.float64) @ root.T
            a = jax.random.normal(ka, (big_n,), jnp.float64)
            return LinearState(a @ h / (self.gamma0 * big_n), h.T @ h / big_n, jnp.sum(a * a) / big_n)

        return jax.vmap(one)(jax.random.split(key, n))

    def finite_width_paths(self, states: LinearState, times) -> LinearState:
        """The exact width-N gradient flow from each initial state (leading axis n): the same
        closed (f, H, G) system, solved for every state at once. Leaves (n, T, ...)."""
        require_x64("the DMFT limit")
        t = check_times(times)
        out = solve_ode(_batched_field, states, t, args=self._args(), steps_option="the largest time")
        return jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), out)

    def pathwise(self, f0, times) -> jax.Array:
        """Each network's own DMFT path: the flow started from its own outputs f₀ (E, M) with the
        infinite-width kernels H₀ = K_x, G₀ = 1; shape (E, T, M). A width-N network departs from it by
        O(N^{-1/2}) (its kernels' own initial fluctuations), the same order as f₀ itself."""
        f0 = jnp.asarray(np.asarray(f0, np.float64))
        if f0.ndim != 2 or f0.shape[1] != self.n_points:
            raise InputError(f"f0 must have shape (E, {self.n_points}), got {tuple(f0.shape)}")
        e = f0.shape[0]
        states = LinearState(f0, jnp.broadcast_to(self.kx, (e, *self.kx.shape)), jnp.ones(e))
        return self.finite_width_paths(states, times).f

    def scaled_covariance(self, times) -> jax.Array:
        """N · Cov f(t), the width-free leading covariance, shape (T, M, M)."""
        return self.predict(times).cov * self.width

    def kernels(self, times, *, fluctuations: bool = True) -> DMFTKernels:
        """H(t), G(t) and the NTK H + G K_x along the DMFT mean, with the leading variance of each
        NTK entry at width N (``fluctuations``)."""
        t = check_times(times)
        if fluctuations:
            out = self._solve_tangents(t, with_kernels=True)
            var = np.asarray(jnp.sum(out["vntk"] ** 2, axis=1)) / self.width
        else:
            s = self.mean_path(t)
            out, var = {"H": s.H, "G": s.G}, None
        h, g = np.asarray(out["H"]), np.asarray(out["G"])
        return DMFTKernels(t, h, g, h + g[:, None, None] * np.asarray(self.kx)[None], var)


def one_point_time(f, gamma0: float, y: float = 1.0):
    """The time at which the infinite-width output reaches f (0 ≤ f < y, or y < f ≤ 0) for one
    training point with |x|²/D = 1 (η = 1): the solution of df/dt = 2√(1 + γ₀²f²)(y − f), f(0) = 0,

        t(f) = ln[ y (1 + γ₀²yf + √(1 + γ₀²y²) √(1 + γ₀²f²)) / ((y − f)(1 + √(1 + γ₀²y²))) ] / (2√(1 + γ₀²y²)),

    which at γ₀ → 0 is the lazy ½ ln(y/(y − f)).
    """
    f = np.asarray(f, np.float64)
    g2 = float(gamma0) ** 2
    r = math.sqrt(1.0 + g2 * y * y)
    num = y * (1.0 + g2 * y * f + r * np.sqrt(1.0 + g2 * f * f))
    return np.log(num / ((y - f) * (1.0 + r))) / (2.0 * r)


class SingleSiteEstimate(NamedTuple):
    """The two-layer DMFT mean and NTK estimated by Monte Carlo over the single-site process, each with
    its Monte Carlo standard error (the spread over independent replicas / √replicas)."""

    times: np.ndarray  # (T,)
    mean: np.ndarray  # (T, M) infinite-width mean of f, training points first
    mean_se: np.ndarray  # (T, M)
    ntk: np.ndarray  # (T, M, M) the evolving NTK Φ + (G-weighted φ′φ′) ⊙ K_x
    ntk_se: np.ndarray  # (T, M, M)
    samples: int  # sites per replica
    replicas: int


def _site_field(t, state, args):
    """The single-site process of a two-layer network, S sites coupled only through f (docstring of
    :func:`two_layer_single_site`); state (a (R, S), h (R, S, M))."""
    a, h = state
    kx, y_train, g0, eta, act = args
    p = y_train.shape[0]
    f = jnp.mean(a[..., None] * act.fn(h), axis=1) / g0  # (R, M)
    delta = (y_train[None] - f[:, :p]) / p  # (R, P)
    da = g0 * jnp.einsum("rsp,rp->rs", act.fn(h[..., :p]), delta)
    dh = g0 * a[..., None] * jnp.einsum("rsp,rp,pm->rsm", act.derivative(h[..., :p]), delta, kx[:p])
    return eta * da, eta * dh


def _site_save(t, state, args):
    a, h = state
    kx, _, g0, _, act = args
    phi, dphi = act.fn(h), act.derivative(h)
    f = jnp.mean(a[..., None] * phi, axis=1) / g0
    ntk = (jnp.einsum("rsm,rsn->rmn", phi, phi) + jnp.einsum("rs,rsm,rsn->rmn", a * a, dphi, dphi) * kx[None]) \
        / a.shape[1]
    return f, ntk


def two_layer_single_site(x_train, y_train, x_test, *, activation, gamma0: float, times, samples: int = 1024,
                          replicas: int = 8, seed: int = 0, learning_rate: float = 1.0) -> SingleSiteEstimate:
    """The infinite-width DMFT of a two-layer μP network with any activation, by Monte Carlo.

    At two layers the single-site process needs no response functions: a site is (a, h) with
    h(x) = w·x/√D on the M points, a₀ ~ N(0, 1), h₀ ~ N(0, K_x), and

        da/dt = η γ₀ Σ_μ Δ_μ φ(h(x_μ)),    dh(x)/dt = η γ₀ a Σ_μ Δ_μ φ′(h(x_μ)) K_x(x_μ, x),

    with Δ_μ = (y_μ − f(x_μ))/P and the self-consistent f(x) = ⟨a φ(h(x))⟩/γ₀ over the law of sites. The
    NTK is ⟨φ(h(x))φ(h(x′))⟩ + ⟨a² φ′(h(x))φ′(h(x′))⟩ K_x(x, x′). Bordelon & Pehlevan's alternating
    procedure (fix Δ, sample sites, recompute f, repeat) converges, for a fixed sample of sites, to the
    solution of the coupled system above, which is solved here directly. Each replica draws
    ``samples``/2 sites and their mirror images (−a₀, h₀), so f₀ = 0 exactly; ``replicas`` independent
    replicas give the Monte Carlo standard error of every reported number (the O(1/samples) bias of a
    finite sample is below it for the sizes here).
    """
    require_x64("the DMFT limit")
    act = get_activation(activation)
    g0 = check_gamma0(gamma0)
    lr = require_real(learning_rate, "learning_rate")
    t = check_times(times)
    xa, y, xb = check_problem(x_train, y_train, x_test)
    check_sampling(samples, replicas)
    x = np.concatenate([xa, xb])
    m = x.shape[0]
    need = 8.0 * replicas * samples * (m + 1) * 14 + 8.0 * replicas * len(t) * m * m
    if need > MEMORY_FRACTION * physical_memory_bytes():
        raise InputError(f"the single-site Monte Carlo needs about {need / 2**30:.3g} GiB; use fewer samples, "
                         "replicas or points")
    kx = x @ x.T / x.shape[1]
    lam, u = np.linalg.eigh(0.5 * (kx + kx.T))
    root = jnp.asarray(u * np.sqrt(np.clip(lam, 0.0, None)))
    half = samples // 2
    key_h, key_a = jax.random.split(jax.random.fold_in(jax.random.key(seed), 0x51735173))
    h0 = jax.random.normal(key_h, (replicas, half, m), jnp.float64) @ root.T
    a0 = jax.random.normal(key_a, (replicas, half), jnp.float64)
    state = (jnp.concatenate([a0, -a0], axis=1), jnp.concatenate([h0, h0], axis=1))
    args = (jnp.asarray(kx), jnp.asarray(y), jnp.asarray(g0), jnp.asarray(lr), act)
    # Tolerances far below the Monte Carlo error (~1e-3 here), not at float64's limit: with a kinked φ (relu)
    # some site crosses its kink at almost every instant, and 1e-10 would cost thousands of rejected steps.
    f, ntk = solve_ode(_site_field, state, t, args=args, save=_site_save, rtol=1e-7, atol=1e-9,
                       steps_option="the largest time")
    f, ntk = np.asarray(f), np.asarray(ntk)  # (T, R, M), (T, R, M, M)
    se = lambda v: v.std(axis=1, ddof=1) / math.sqrt(replicas)  # noqa: E731
    return SingleSiteEstimate(t, f.mean(axis=1), se(f), ntk.mean(axis=1), se(ntk), 2 * half, replicas)


def check_gamma0(gamma0) -> float:
    """γ₀ > 0, finite."""
    return require_real(gamma0, "gamma0")


def check_problem(x_train, y_train, x_test) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training points (P, D), targets (P,) and test points (Q, D) (Q = 0 for None), checked."""
    xa = check_points(x_train, "x_train")
    y = check_targets(y_train, xa.shape[0])
    return xa, y, check_test_points(x_test, xa)


def check_sampling(samples, replicas) -> None:
    """Sites per replica and replicas of a sampled solver, each an integer ≥ 2."""
    for name, v in (("samples", samples), ("replicas", replicas)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise InputError(f"{name} must be an integer ≥ 2, got {v!r}")


def check_width(width) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(width)) or float(width) != int(width) or width < 1:
        raise InputError(f"width must be a positive integer, got {width!r}")
    return int(width)


def dmft_limit(x_train, y_train, x_test, *, depth: int, activation, gamma0: float, width: int,
               learning_rate: float = 1.0) -> Limit:
    """The feature-learning limit of μP networks of width ``width`` (docs/feature-learning.md).

    Args:
        x_train: training inputs (P, D).
        y_train: targets (P,).
        x_test: test inputs (Q, D), or None.
        depth: the number of hidden layers L.
        activation: φ, a name as elsewhere (``"identity"`` for linear networks).
        gamma0: γ₀ > 0, the feature-learning strength.
        width: N, the width whose leading O(1/N) covariance ``predict`` returns.
        learning_rate: η > 0 (dθ/dt = −η γ₀² N ∇L).

    Returns:
        A :class:`~jaxlimit.limits.base.Limit` whose ``predict(times)`` is the Gaussian of the
        outputs on the training points then the test points: mean the infinite-width DMFT mean,
        covariance the leading finite-width covariance.

    So far the limit is solved for two-layer linear networks (depth 1, ``"identity"``), where it is
    exact; other depths and activations are refused with an InputError.
    """
    depth = check_depth(depth)
    act = get_activation(activation)
    g0 = check_gamma0(gamma0)
    n = check_width(width)
    lr = require_real(learning_rate, "learning_rate")
    xa, y, xb = check_problem(x_train, y_train, x_test)
    if depth != 1 or act.name != "identity":
        raise InputError(f"dmft_limit's finite-width covariance is solved for two-layer linear networks so far "
                         f"(depth=1, activation='identity'), got depth={depth}, activation={act.name!r}; "
                         "the infinite-width mean of deep linear networks is jaxlimit.limits.dmft_deep.deep_dmft")
    require_x64("the DMFT limit")
    x = np.concatenate([xa, xb])
    kx = x @ x.T / x.shape[1]
    return TwoLayerLinearDMFT(jnp.asarray(0.5 * (kx + kx.T)), jnp.asarray(y), g0, n, lr)


__all__ = ["DMFTKernels", "LinearState", "SingleSiteEstimate", "two_layer_single_site", "TwoLayerLinearDMFT", "dmft_limit", "initial_factor", "linear_field",
           "one_point_time"]
