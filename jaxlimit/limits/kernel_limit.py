"""The Gaussian prediction of linear kernel gradient flow (docs/xavier.md#the-limit and docs/deep.md#what-the-limit-predicts).

M training points with targets Y and the remaining points (test or probe
points, P of them) make N = M + P points, training first. Given the NNGP K and
the NTK Θ on all N points (N × N Gram matrices), the outputs f_t ∈ R^N of an
infinitely wide network trained by gradient flow on the mean squared loss
(1/2M) Σ_j (f(x_j) − y_j)² with learning rate η solve

    df/dt = β Θ_{:,M} (Y − f_M),    f_0 ~ N(0, K),    β = η/M,

neural-tangents' ``predict.gradient_descent_mse_ensemble`` convention (NT
multiplies t by the learning rate and divides the eigenvalues by
``y_train.size``, which is M for one output). With Θ_MM = V diag(λ) Vᵀ (one
``eigh``) the solution is f_t = f_0 + R_t (Y − f_0,M), where

    R_t = Θ_{:,M} V diag(φ_t(λ)) Vᵀ,    φ_t(λ) = (1 − e^{−βλt})/λ,

so on the training rows R_t = I − e^{−βΘ_MM t} and on the test rows
R_t = Θ_sM Θ_MM⁻¹ (I − e^{−βΘ_MM t}) (docs/deep.md's P_t). Hence f_t is Gaussian with

    mean_t = R_t Y,    cov_t = (I − R_t S) K (I − R_t S)ᵀ,

S f = f_M picking the training rows. t = ∞ is allowed: φ_∞(λ) = 1/λ, the
converged predictor (kernel regression with Θ, NT's ``t=None``).

Null directions. Eigenvalues λ ≤ max(M, 10) ε λ_max are numerically zero:
gradient flow never moves along them, so φ_t = 0 there (Θ ⪰ 0 makes
Θ_sM v = 0 for every null vector v of Θ_MM, so the exact contribution
Θ_sM v βt vᵀ vanishes; using it would multiply rounding noise by t). A
singular Θ therefore gives finite moments at every t, including t = ∞.

The same moments solve dμ/dt = β Θ_{:,M}(Y − μ_M), dC/dt = −β(Θ_{:,M} C_{M,:} + C_{:,M} Θ_{M,:})
(μ_0 = 0, C_0 = K): :meth:`KernelLimit.predict_ode` integrates them with
diffrax through :func:`~jaxlimit.limits._ode.solve_ode`, the cross-check.

The NNGP posterior (:meth:`KernelLimit.nngp_posterior`) is the Bayesian GP
regression with observation noise variance σ²: mean = K_{:,M}(K_MM + σ²I)⁻¹ Y,
cov = K − K_{:,M}(K_MM + σ²I)⁻¹ K_{M,:} (NT's ``gp_inference`` with
``get="nngp"`` and ``diag_reg=σ²`` in absolute units).

The Xavier limit (docs/xavier.md#the-limit, :class:`~jaxlimit.limits.xavier.XavierLimit`) is
the same flow with β = α/M and its own kernels; both use the functions here.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.limits._ode import check_times, solve_ode
from jaxlimit.limits.base import GRADIENT_FLOW, Limit
from jaxlimit.limits.gaussian_expectations import require_x64
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.validation import require_real

SINGULAR_RTOL = 1e-10
"""Θ_MM counts as singular when λ_min ≤ SINGULAR_RTOL · λ_max (or λ_min is
within the kernel's own error of zero)."""

_NOT_PSD_RTOL = 1e-8
"""A kernel with an eigenvalue below −rtol · λ_max is not a kernel matrix."""


@dataclasses.dataclass(frozen=True)
class KernelConditioning:
    """Spectral facts about the training kernel Θ_MM (A_MM for the Xavier limit).

    Attributes:
        min_eigenvalue: λ_min(Θ_MM).
        max_eigenvalue: λ_max(Θ_MM).
        condition_number: λ_max/λ_min (inf when λ_min ≤ 0).
        singular: λ_min is zero to within rounding or the kernel's error.
        loss_decay_rate: 2 η λ_min / M, a lower bound on the exponential
            decay rate of the limit's training loss (0 when singular).
    """

    min_eigenvalue: float
    max_eigenvalue: float
    condition_number: float
    singular: bool
    loss_decay_rate: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# The shared closed form and ODEs ---------------------------------------------------


def flow_response(ntk: jax.Array, n_train: int, beta: float, times: np.ndarray) -> jax.Array:
    """R_t of shape (T, N, M) (module docstring), t = ∞ allowed.

    Training rows are formed as V diag(1 − e^{−βλt}) Vᵀ, the test rows as
    Θ_sM V diag(φ_t) Vᵀ; numerically-zero eigenvalues contribute nothing.
    """
    m = n_train
    lam, vec = jnp.linalg.eigh(ntk[:m, :m])
    tol = max(m, 10) * jnp.finfo(lam.dtype).eps * jnp.maximum(jnp.max(jnp.abs(lam)), jnp.finfo(lam.dtype).tiny)
    live = lam > tol
    safe = jnp.where(live, lam, 1.0)
    t = jnp.asarray(times, lam.dtype)[:, None]  # (T, 1)
    gain = jnp.where(live[None, :], -jnp.expm1(-beta * safe[None, :] * t), 0.0)  # λ φ_t(λ), (T, M)
    phi = gain / safe[None, :]
    train = jnp.einsum("ik,tk,jk->tij", vec, gain, vec)
    test = jnp.einsum("pk,tk,jk->tpj", ntk[m:, :m] @ vec, phi, vec)
    return jnp.concatenate([train, test], axis=1)


def flow_moments(nngp: jax.Array, ntk: jax.Array, y_train: jax.Array, beta: float,
                 times: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """(mean (T, N), cov (T, N, N)) of f_t from one eigendecomposition."""
    m, n = y_train.shape[0], nngp.shape[0]
    r = flow_response(ntk, m, beta, times)
    mean = r @ y_train
    prop = jnp.eye(n, dtype=r.dtype)[None] - jnp.pad(r, ((0, 0), (0, 0), (0, n - m)))  # I − R_t S
    cov = prop @ nngp @ jnp.swapaxes(prop, 1, 2)
    return mean, 0.5 * (cov + jnp.swapaxes(cov, 1, 2))


def flow_pathwise(ntk: jax.Array, y_train: jax.Array, beta: float, f0: jax.Array,
                  times: np.ndarray) -> jax.Array:
    """f_t = f_0 + R_t (Y − f_0,M) for each row of f0 (E, N) → (E, T, N)."""
    m = y_train.shape[0]
    r = flow_response(ntk, m, beta, times)
    return f0[:, None, :] + jnp.einsum("tpm,em->etp", r, y_train[None, :] - f0[:, :m])


# The vector fields are module-level functions and the kernels travel in ``args``: diffrax's
# compiled solve is cached on the field's identity, so a closure made afresh per call would
# recompile the same program on every call (every width of a sweep, every repeated comparison).
# β stays a Python float in ``args`` (static to the solve, as it was inside a closure).
def _moments_field(_, state, args):
    k, y_train, beta = args
    m = y_train.shape[0]
    mu, cov = state
    kc = k @ cov[:m, :]
    return beta * (k @ (y_train - mu[:m])), -beta * (kc + kc.T)


def _pathwise_field(_, f, args):
    k, y_train, beta = args
    m = y_train.shape[0]
    return beta * (y_train[None, :] - f[:, :m]) @ k.T


def flow_moments_ode(nngp, ntk, y_train, beta: float, times, *, rtol=None, atol=None):
    """(mean, cov) by integrating the moment ODEs with :func:`solve_ode` (finite times)."""
    k = ntk[:, :y_train.shape[0]]
    mu0 = jnp.zeros(nngp.shape[0], nngp.dtype)
    return solve_ode(_moments_field, (mu0, nngp), times, args=(k, y_train, float(beta)), rtol=rtol, atol=atol,
                     steps_option="the largest time")


def flow_pathwise_ode(ntk, y_train, beta: float, f0, times, *, rtol=None, atol=None) -> jax.Array:
    """Integrate df/dt = β Θ_{:,M}(Y − f_M) from each row of f0 (E, N) → (E, T, N)."""
    k = ntk[:, :y_train.shape[0]]
    path = solve_ode(_pathwise_field, f0, times, args=(k, y_train, float(beta)), rtol=rtol, atol=atol,
                     steps_option="the largest time")
    return jnp.swapaxes(path, 0, 1)


def expected_train_loss(y_train: jax.Array, mean: jax.Array, cov: jax.Array) -> jax.Array:
    """½ mean_j E[(y_j − f_j)²] = ½ mean_j ((y_j − μ_j)² + C_jj) over the M training rows, shape (T,)."""
    m = y_train.shape[0]
    bias2 = (y_train[None, :] - mean[:, :m]) ** 2
    var = jnp.diagonal(cov, axis1=1, axis2=2)[:, :m]
    return 0.5 * jnp.mean(bias2 + var, axis=1)


def kernel_conditioning(ntk_train: jax.Array, rate: float, kernel_error: float = 0.0) -> KernelConditioning:
    """λ_min, λ_max, the condition number and the loss-decay bound 2·rate·λ_min/M of Θ_MM."""
    m = ntk_train.shape[0]
    lam = np.linalg.eigvalsh(np.asarray(ntk_train, dtype=np.float64))
    lo, hi = float(lam[0]), float(lam[-1])
    singular = lo <= max(SINGULAR_RTOL * abs(hi), m * kernel_error)
    cond = hi / lo if lo > 0 else float("inf")
    decay = 0.0 if singular else 2.0 * rate * lo / m
    return KernelConditioning(lo, hi, cond, bool(singular), decay)


# The limit object -------------------------------------------------------------------


def _matrix(a, name: str) -> np.ndarray:
    try:
        out = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric (N, N) matrix") from None
    if out.ndim != 2 or out.shape[0] != out.shape[1] or out.shape[0] < 1:
        raise InputError(f"{name} must be a square (N, N) matrix, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains NaN or infinite values")
    scale = max(float(np.max(np.abs(out))), np.finfo(float).tiny)
    if np.max(np.abs(out - out.T)) > 1e-8 * scale:
        raise InputError(f"{name} must be symmetric")
    out = 0.5 * (out + out.T)
    lam = np.linalg.eigvalsh(out)
    if lam[0] < -_NOT_PSD_RTOL * max(lam[-1], 0.0) - 1e-300:
        raise InputError(f"{name} must be positive semi-definite (smallest eigenvalue {lam[0]:.3g})")
    return out


def check_targets(y_train, n_train: int | None = None, name: str = "y_train") -> np.ndarray:
    """Targets of shape (M,) (or (M, 1)), finite; M must equal ``n_train`` when given."""
    try:
        y = np.asarray(y_train, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array of shape (M,)") from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.size < 1 or (n_train is not None and y.shape[0] != n_train):
        want = "(M,)" if n_train is None else f"({n_train},)"
        raise InputError(f"{name} must have shape {want}, got {np.shape(y_train)}")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{name} contains NaN or infinite values")
    return y


class KernelLimit(Limit):
    """The Gaussian law of an infinite ensemble under kernel gradient flow (module docstring).

    Build it from Gram matrices (analytic, e.g. :func:`mlp_limit`, or Monte
    Carlo, :func:`~jaxlimit.limits.empirical.monte_carlo_kernels`).

    Attributes:
        nngp: K on all N = M + P points, training first, shape (N, N).
        ntk: Θ on the same points, shape (N, N).
        y_train: Y, shape (M,).
        learning_rate: η > 0; the flow is df/dt = (η/M) Θ_{:,M}(Y − f_M).
        kernel_error: the largest error (bound or standard error) of a kernel entry.
        kernel_method: how the kernels were obtained.
        description: what the kernels describe, ``{"model": {...}}`` in the model's
            ``describe()`` vocabulary (empty: any model); see :attr:`assumptions`.
        method: the training method whose limit this is (``"fullbatch"``: gradient
            flow), or None when online SGD and minibatches share the limit (Xavier).
    """

    nngp: jax.Array
    ntk: jax.Array
    y_train: jax.Array
    learning_rate: float
    kernel_error: float = 0.0
    kernel_method: str = "given"
    description: dict = eqx.field(default_factory=dict)
    method: str | None = GRADIENT_FLOW

    def __init__(self, nngp, ntk, y_train, learning_rate: float, *, kernel_error: float = 0.0,
                 kernel_method: str = "given", describes: dict | None = None, method: str | None = GRADIENT_FLOW):
        require_x64("kernel limits")
        k = _matrix(nngp, "nngp")
        theta = _matrix(ntk, "ntk")
        if k.shape != theta.shape:
            raise InputError(f"nngp and ntk must have the same shape, got {k.shape} and {theta.shape}")
        y = check_targets(y_train)
        if y.shape[0] > k.shape[0]:
            raise InputError(f"y_train has {y.shape[0]} targets but the kernels cover only {k.shape[0]} points")
        self.nngp = jnp.asarray(k)
        self.ntk = jnp.asarray(theta)
        self.y_train = jnp.asarray(y)
        self.learning_rate = require_real(learning_rate, "learning_rate")
        self.kernel_error = float(kernel_error)
        self.kernel_method = str(kernel_method)
        self.description = dict(describes or {})
        self.method = method

    @property
    def assumptions(self) -> dict:
        """The described model (if given) and the training: squared loss, base rate α = η, and the method."""
        trainer = {"alpha": self.learning_rate, "loss": "squared"}
        if self.method is not None:
            trainer["method"] = self.method
        return {**self.description, "trainer": trainer}

    @property
    def n_train(self) -> int:
        """M, the number of training points (the first M rows)."""
        return int(self.y_train.shape[0])

    @property
    def n_points(self) -> int:
        """N = M + P."""
        return int(self.nngp.shape[0])

    @property
    def n_test(self) -> int:
        """P, the number of test points (the last P rows)."""
        return self.n_points - self.n_train

    @property
    def beta(self) -> float:
        """β = η/M, the rate of the kernel ODE."""
        return self.learning_rate / self.n_train

    def predict(self, times) -> Gaussian:
        """The law of f_t at ``times`` (T,), closed form: mean (T, N), cov (T, N, N).

        t = 0 gives N(0, K); ``np.inf`` the converged predictor.
        """
        t = check_times(times, allow_inf=True)
        mean, cov = flow_moments(self.nngp, self.ntk, self.y_train, self.beta, t)
        return Gaussian(mean, cov, t)

    def predict_ode(self, times, *, rtol: float | None = None, atol: float | None = None) -> Gaussian:
        """:meth:`predict` by integrating the moment ODEs with diffrax (finite times only)."""
        t = check_times(times)
        mean, cov = flow_moments_ode(self.nngp, self.ntk, self.y_train, self.beta, t, rtol=rtol, atol=atol)
        return Gaussian(mean, 0.5 * (cov + jnp.swapaxes(cov, 1, 2)), t)

    def pathwise(self, f0, times) -> jax.Array:
        """Each network's own linearised path f_t = f_0 + R_t (Y − f_0,M).

        Args:
            f0: initial outputs, shape (E, N) (training rows first), e.g. a
                finite ensemble's outputs at t = 0.
            times: (T,), ∞ allowed.

        Returns:
            Shape (E, T, N).
        """
        return flow_pathwise(self.ntk, self.y_train, self.beta, self._check_f0(f0), check_times(times, allow_inf=True))

    def pathwise_ode(self, f0, times, *, rtol: float | None = None, atol: float | None = None) -> jax.Array:
        """:meth:`pathwise` by integrating the random ODE with diffrax (finite times only)."""
        t = check_times(times)
        return flow_pathwise_ode(self.ntk, self.y_train, self.beta, self._check_f0(f0), t, rtol=rtol, atol=atol)

    def nngp_posterior(self, noise: float = 0.0) -> Gaussian:
        """The Bayesian GP posterior with prior K given the training data, on all N points.

        Observations y = f(x) + ε with ε ~ N(0, ``noise``²) independent:
        mean = K_{:,M}(K_MM + noise² I)⁻¹ Y and cov = K − K_{:,M}(K_MM + noise² I)⁻¹ K_{M,:}
        (a pseudo-inverse on numerically-zero eigenvalues when noise = 0).
        Returns mean (N,) and cov (N, N); ``.select(range(M, N))`` keeps the test points.
        """
        s = require_real(noise, "noise (a standard deviation)", low_open=False)
        m = self.n_train
        lam, vec = jnp.linalg.eigh(self.nngp[:m, :m])
        lam = lam + s * s
        tol = max(m, 10) * jnp.finfo(lam.dtype).eps * jnp.max(jnp.abs(lam))
        inv = jnp.where(lam > tol, 1.0 / jnp.where(lam > tol, lam, 1.0), 0.0)
        gain = (self.nngp[:, :m] @ vec) * inv[None, :] @ vec.T  # K_{:,M}(K_MM + σ²I)⁻¹, (N, M)
        mean = gain @ self.y_train
        cov = self.nngp - gain @ self.nngp[:m, :]
        return Gaussian(mean, 0.5 * (cov + cov.T))

    def train_loss(self, law: Gaussian) -> jax.Array:
        """The expected training loss ½ mean_j E[(y_j − f_j)²] of a prediction, shape (T,)."""
        return expected_train_loss(self.y_train, jnp.asarray(law.mean), jnp.asarray(law.cov))

    def conditioning(self) -> KernelConditioning:
        """λ_min, λ_max and the condition number of Θ_MM; loss decay rate 2ηλ_min/M."""
        return kernel_conditioning(self.ntk[: self.n_train, : self.n_train], self.learning_rate, self.kernel_error)

    def _check_f0(self, f0) -> jax.Array:
        try:
            a = np.asarray(f0, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"f0 must be a numeric array of shape (E, {self.n_points})") from None
        if a.ndim != 2 or a.shape[1] != self.n_points:
            raise InputError(f"f0 must have shape (E, {self.n_points}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError("f0 contains NaN or infinite values")
        return jnp.asarray(a)


def limit_from_kernels(nngp, ntk, y_train, learning_rate: float, **kwargs) -> KernelLimit:
    """:class:`KernelLimit` from Gram matrices on all N points (training first)."""
    return KernelLimit(nngp, ntk, y_train, learning_rate, **kwargs)


__all__ = [
    "KernelConditioning", "KernelLimit", "SINGULAR_RTOL", "check_targets",
    "expected_train_loss", "flow_moments", "flow_moments_ode", "flow_pathwise", "flow_pathwise_ode",
    "flow_response", "kernel_conditioning", "limit_from_kernels",
]
