"""The Xavier (γ = 1/2) limit: a Gaussian random ODE (docs/xavier.md#the-limit).

As N → ∞ the outputs on the M training points followed by the Q probe points,
h_t ∈ R^P with P = M + Q, solve the linear random ODE

    dh/dt = β K (Y − S h),    h_0 = G ~ N(0, Σ),    β = α/M,

where K = A[:, :M] (shape (P, M)) holds the limit kernel between every point
and the training points and S h = h[:M] picks the training outputs. Writing
A_MM = V diag(λ) Vᵀ for the training block (one ``eigh``),

    h_t = h_0 + R_t (Y − S h_0),    R_t = K V diag((1 − e^{−βλt})/λ) Vᵀ,

((1 − e^{−βλt})/λ → βt at λ = 0, so no inverse of A is needed, and on the
training rows R_t = I − e^{−βA_MM t}). Hence h_t is Gaussian with

    mean_t = R_t Y,    cov_t = (I − R_t S) Σ (I − R_t S)ᵀ,

which also solve the moment ODEs dμ/dt = β K (Y − S μ) and
dC/dt = −β (K S C + C Sᵀ Kᵀ). :meth:`XavierLimit.moments` integrates those
with diffrax; :meth:`XavierLimit.moments_closed_form` is the cross-check.
This is the flow of :mod:`jaxlimit.limits.kernel_limit` with η = α, and the
closed form and the ODEs are that module's (numerically-zero eigenvalues of
A_MM, for example from antipodal inputs, contribute nothing there).
:meth:`XavierLimit.pathwise` integrates the random ODE from given initial
outputs (each network's own h^N_0), the coupled prediction of that network.

The limit is gradient flow on the convex quadratic β/2 (Y − h)ᵀ A (Y − h):
if A_MM ≻ 0 the training residual decays at least like e^{−βλ_min t}, so the
training loss goes to zero (the global minimum). With no bias and an odd σ,
antipodal inputs x_j = −x_l make A_MM singular; :meth:`XavierLimit.conditioning`
reports λ_min and the condition number.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation, get_activation
from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.kernel_limit import SINGULAR_RTOL, KernelConditioning, KernelLimit, flow_moments_ode
from jaxlimit.limits._ode import check_times
from jaxlimit.limits.kernels import estimate_xavier_kernels
from jaxlimit.models.two_layer import TwoLayer
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.training.steps import Trainer


class XavierLimit(KernelLimit):
    """The Gaussian limit of a γ = 1/2 two-layer network on fixed points: the kernel
    flow of :class:`~jaxlimit.limits.kernel_limit.KernelLimit` with η = α and the
    Xavier kernels Σ (``nngp``) and A (``ntk``) on all P = M + Q points.

    SGD (online or minibatch) and gradient descent share this limit (the
    sampling noise vanishes as N → ∞ at the Xavier clock), so ``method`` is None.
    :meth:`pathwise` integrates the random ODE with diffrax (the closed form is
    :meth:`pathwise_closed_form`); :meth:`predict` is the closed form and
    :meth:`moments` the diffrax cross-check.
    """

    @property
    def alpha(self) -> float:
        """The base learning rate α (= the kernel flow's η)."""
        return self.learning_rate

    def moments_closed_form(self, times) -> tuple[jax.Array, jax.Array]:
        """(mean (T, P), cov (T, P, P)) at ``times`` from one eigendecomposition."""
        law = self.predict(times)
        return law.mean, law.cov

    def moments(self, times, *, rtol: float | None = None, atol: float | None = None) -> tuple[jax.Array, jax.Array]:
        """(mean (T, P), cov (T, P, P)) by integrating the moment ODEs with diffrax.

        dμ/dt = β K (Y − S μ), dC/dt = −β (K S C + C Sᵀ Kᵀ), μ_0 = 0, C_0 = Σ.
        """
        return flow_moments_ode(self.nngp, self.ntk, self.y_train, self.beta, check_times(times), rtol=rtol, atol=atol)

    def pathwise_closed_form(self, h0, times) -> jax.Array:
        """The limit path h_t = h_0 + R_t (Y − S h_0) for each row of ``h0`` (E, P) → (E, T, P)."""
        return KernelLimit.pathwise(self, h0, times)

    def pathwise(self, h0, times, *, rtol: float | None = None, atol: float | None = None) -> jax.Array:
        """Integrate dh/dt = β K (Y − S h) with diffrax from each row of ``h0`` (E, P): shape (E, T, P)."""
        return self.pathwise_ode(h0, times, rtol=rtol, atol=atol)

    def warnings(self) -> list[str]:
        """What a reader of a comparison with this limit must know (singular or badly
        conditioned A, inexact kernels)."""
        cond = self.conditioning()
        out = []
        if cond.singular:
            out.append(f"the training kernel A is singular (λ_min = {cond.min_eigenvalue:.3g}, λ_max = "
                       f"{cond.max_eigenvalue:.3g}): the limit's training loss need not go to zero "
                       "(with no bias and an odd activation, antipodal inputs x and −x do this)")
        elif cond.condition_number > 1e6:
            out.append(f"the training kernel A is badly conditioned (condition number {cond.condition_number:.3g}): "
                       f"the loss converges at rate ≥ {cond.loss_decay_rate:.3g} only")
        if self.kernel_error > 1e-6:
            out.append(f"the kernels were computed by {self.kernel_method} with error up to {self.kernel_error:.2g}")
        return out


def xavier_limit(model: TwoLayer, data: Dataset, trainer: Trainer | None = None) -> XavierLimit:
    """The Xavier limit of ``model`` trained by ``trainer`` on ``data``.

    The limit describes a two-layer network with γ = 1/2, a centred Gaussian
    initial law (c ~ N(0, c_std²), w ~ N(0, w_std² I)), and SGD or gradient
    descent on the squared loss with base rate α; anything else is refused.
    Kernels are evaluated on the training inputs followed by the probe inputs.
    """
    trainer = Trainer() if trainer is None else trainer
    if not isinstance(model, TwoLayer):
        raise InputError(f"the Xavier limit describes two-layer networks, got {type(model).__name__}")
    if model.gamma != 0.5:
        raise InputError(f"the Xavier limit describes γ = 1/2 (scaling 'xavier'), got γ = {model.gamma:g}; "
                         "use the mean-field limit for γ = 1")
    law = model.init_law
    if law.kind != "gaussian" or law.c_mean != 0.0:
        raise InputError("the Xavier limit's kernels assume centred Gaussian initial weights "
                         f"(got a {law.kind} law with c_mean = {law.c_mean:g})")
    if trainer.loss.name != "squared":
        raise InputError(f"the Xavier limit is derived for the squared loss, got {trainer.loss.name!r}")
    if trainer.method == "optax":
        raise InputError("the Xavier limit describes plain SGD or gradient descent, not an optax optimizer")
    if data.dim != model.dim:
        raise InputError(f"data has input dimension {data.dim} but the model expects {model.dim}")
    x = data.x_all
    k = estimate_xavier_kernels(x, x, model.activation, law.w_std, law.c_std)
    # Symmetrise: the kernels are symmetric, rounding and quadrature need not be.
    nngp = 0.5 * (k.nngp + k.nngp.T)
    ntk = 0.5 * (k.ntk + k.ntk.T)
    described = {"model": {"model": model.describe().get("model"), "gamma": model.gamma,
                           "activation": model.activation.name}}
    return XavierLimit(nngp, ntk, jnp.asarray(data.y_train, nngp.dtype), float(trainer.alpha),
                       kernel_error=k.max_error, kernel_method=k.method, describes=described, method=None)


def initial_kurtosis_excess(
    key: jax.Array,
    x,
    activation: str | Activation = "tanh",
    w_std: float = 1.0,
    *,
    n_samples: int = 2**18,
    rtol: float = 1e-8,
) -> tuple[float, int]:
    """The leading finite-width correction to the initial law, as Mardia's kurtosis.

    At width N the initial outputs h^N_0 = N^{-1/2} Σ_i c^i φ^i, φ^i = σ(w^i·x)
    (shape (P,)), have exactly mean 0 and covariance Σ; the first departure
    from N(0, Σ) is the fourth cumulant, of order 1/N (the third vanishes for
    mean-zero Gaussian c). Whitening by Σ on its r-dimensional range,
    y = c Σ^{-1/2} φ for one neuron, Mardia's kurtosis b2 = E|z|⁴ of the
    whitened outputs has

        E[b2] − r(r+2) ≈ κ / N,
        κ = E|y|⁴ − r² − 2r = 3 E[(φᵀ Σ_φ^+ φ)²] − r² − 2r,

    with Σ_φ = E[φ φᵀ] (c_std cancels). Under exact Gaussianity b2 has
    standard error √(8 r (r+2) / E) over E samples, so κ / (N √(8r(r+2)/E))
    is the finite-width effect in standard errors: how far an ensemble of E
    networks of width N can tell its initial law from the limit's.

    Args:
        key: PRNG key for the Monte Carlo over w ~ N(0, w_std² I).
        x: inputs, shape (P, d).
        n_samples: draws of w.
        rtol: directions of Σ_φ with eigenvalue ≤ rtol · λ_max are dropped
            (an odd σ makes outputs at antipodal inputs exact negatives).

    Returns:
        (κ, r).
    """
    act = get_activation(activation)
    x = jnp.asarray(x, jnp.result_type(float))
    w = w_std * jax.random.normal(key, (int(n_samples), x.shape[1]), x.dtype)
    phi = np.asarray(act.fn(w @ x.T), dtype=np.float64)  # (S, P)
    second = phi.T @ phi / phi.shape[0]
    lam, vec = np.linalg.eigh(second)
    keep = lam > rtol * lam[-1]
    r = int(np.sum(keep))
    q = np.sum((phi @ vec[:, keep]) ** 2 / lam[keep], axis=1)  # φᵀ Σ_φ^+ φ per draw
    return float(3.0 * np.mean(q**2) - r * r - 2 * r), r


__all__ = ["KernelConditioning", "SINGULAR_RTOL", "XavierLimit", "initial_kurtosis_excess", "xavier_limit"]
