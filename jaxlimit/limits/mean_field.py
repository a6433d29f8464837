"""The mean-field limit (γ = 1) of the two-layer network and its fluctuations (docs/mean-field.md).

The network as a measure
------------------------
At γ = 1 the network is an average over its neurons θ = (c, w):

    g^N(x) = (1/N) Σ_i c^i σ(w^i·x) = ∫ c σ(w·x) dμ^N(θ),    μ^N = (1/N) Σ_i δ_{θ^i}.

Full-batch gradient descent on the mean loss L = (1/M) Σ_j ℓ(g^N(x_j), y_j)
with rate α (= α N^{-(2-2γ)} at γ = 1) moves neuron i by

    Δθ^i = −α ∇_{θ^i} L = (α/N) (1/M) Σ_j r_j ∇_θ[c σ(w·x_j)](θ^i),    r_j = −∂ℓ/∂ŷ(g^N(x_j), y_j),

(r_j = y_j − g^N(x_j) for the squared loss): the 1/N of the normalisation
makes each neuron move O(1/N) per step, and with N steps per unit of time
this is the Euler scheme, step 1/N, of the *particle gradient flow*

    dθ/dt = v_t(θ) = (α/M) Σ_j r_t(x_j) ∇_θ[c σ(w·x_j)],     r_t(x_j) = −∂ℓ/∂ŷ(ḡ_t(x_j), y_j),
    dc/dt = (α/M) Σ_j r_j σ(w·x_j),     dw/dt = (α/M) Σ_j r_j c σ′(w·x_j) x_j.

Each neuron's velocity is O(1) and depends on the others only through the
M residuals, so the flow transports any law of neurons: μ_t = (θ ↦ θ_t)_# μ_0
solves the continuity equation ∂_t μ + ∇·(μ v[μ]) = 0 and the limit output
is h̄_t(x) = ∫ c σ(w·x) dμ_t. Online SGD has the same drift (its sample is
uniform over the M points) plus a noise term, so its limit is the same.

Particles. A weighted particle system μ = Σ_k m_k δ_{θ_k} (Σ m_k = 1) is
transported exactly by the same ODE (the weights never change): this module
integrates K particles with diffrax. Two uses:

* the limit: particles are a quadrature of the initial law μ_0 (a scrambled
  Sobol' net mapped through the inverse CDF, error close to K^{-1} for smooth
  σ, against K^{-1/2} for Monte Carlo). The discretisation error is reported
  as the largest gap between the K-point and the nested K/2-point solution
  (a conservative bound for the K-point one) plus the gap between two
  different ODE solvers;
* a finite network: its own N neurons with weights 1/N
  (:func:`network_particles`), whose flow the full-batch network follows to
  O(1/N) (the Euler error), which checks the factors above.

Fluctuations (the prediction of the covariance)
-----------------------------------------------
Let F_t map an initial measure to the output h_t = F_t(μ_0) on the P points.
The network is F_t(μ^N_0), with μ^N_0 the empirical measure of N i.i.d.
draws. To first order in μ^N_0 − μ_0 = O(N^{-1/2}),

    h^N_t − h̄_t ≈ ∫ φ_t d(μ^N_0 − μ_0) = (1/N) Σ_i (φ_t(θ^i) − E_{μ_0} φ_t),

where φ_t(θ) = δF_t/δμ(θ) ∈ R^P is the first variation (influence
function): the derivative of h_t when a small mass ε is added at θ. It is a
sum of N i.i.d. terms, hence

    √N (h^N_t − h̄_t)  →  N(0, C_t),     C_t = Cov_{θ∼μ_0}[φ_t(θ)].

In the weighted particle system φ_t(θ_k) = ∂h_t/∂m_k, so the whole
influence function comes from reverse-mode differentiation of the solve
with respect to the weights: one backward pass per output (t, x), through
diffrax's ``RecursiveCheckpointAdjoint`` (discretise-then-optimise, so the
derivative is the exact derivative of the discrete solution). Then
C_t ≈ Σ_k m_k (φ_k − φ̄)(φ_k − φ̄)ᵀ with φ̄ = Σ_k m_k φ_k. At t = 0,
φ_0(θ) = c σ(w·x) and C_0 = Cov[c σ(w·x)], the familiar initial variance.

What the prediction neglects:

* **SGD noise.** Under online or minibatch SGD each step's random sample
  adds a martingale increment; accumulated over the N t steps it moves the
  output by O(N^{-1/2}), the same order as the initial sampling, and is
  uncorrelated with it to leading order. The prediction is then only the
  initial-sampling part and *underestimates* the covariance. It is complete
  for full-batch gradient descent (the CLT covariance of gradient flow).
* **Higher orders.** With G the linear term above (√N-scaled) and Q the
  second-order one, √N (h^N_t − h̄_t) = G + Q/√N + O(1/N). The mean moves
  by E[Q]/√N: a bias of h^N_t of order 1/N, half the trace of the second
  variation against the sampling covariance, (1/2N)(E_θ[δ²F/δμ²(θ, θ)] −
  ∬ δ²F/δμ² dμ_0 dμ_0). The third cumulants of G and of (G, G, Q) are
  O(N^{-1/2}): a skewness of that order. The covariance moves by
  2 Cov(G, Q)/√N + Cov(Q)/N, and Cov(G, Q) is a third moment of the
  fluctuation, itself O(N^{-1/2}): a relative correction of order 1/N.
  On the default problem of ``jaxlimit mean-field`` (t = 2) this part is
  between −0.05/N and 0.09/N per point (``benchmarks/mean_field_bias.py``
  estimates the trace through the solver and checks it against ensembles
  of widths 16–64).
* **Time discretisation.** Full-batch descent is the Euler scheme with step
  α/N of the flow: an O(1/N) deterministic bias of the mean (at most
  0.04/N per point on the same problem), a relative O(1/N) effect on the
  covariance. Together the two predict at most 0.06/N per point there, and
  ensembles of widths 16–64 show up to 0.1/N (their O(N^-2) terms
  included): 0.1/√N in scaled units, 0.2 standard errors of the scaled
  mean of 2048 networks at N = 4096, far below what the CLT verdict resolves.
* **Quadrature.** C_t is itself a K-particle quadrature of Cov_{μ_0}[φ_t];
  its relative error is small for K ≫ P (and is checked by changing K).
"""

from __future__ import annotations

import functools
import math
import warnings as _warnings

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation, get_activation
from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.base import Limit
from jaxlimit.limits._ode import check_times, solve_ode
from jaxlimit.losses import Loss, get_loss
from jaxlimit.models.two_layer import InitLaw, TwoLayer, TwoLayerParams
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.streams import check_seed
from jaxlimit.training.steps import Trainer
from jaxlimit.validation import require_int, require_real, validate_times

RULES = ("sobol", "monte-carlo")
"""How :func:`sample_particles` discretises the initial law."""

SOLVERS = {"tsit5": diffrax.Tsit5, "dopri8": diffrax.Dopri8, "dopri5": diffrax.Dopri5}
"""ODE solvers by name; the default is Tsit5 and Dopri8 is the cross-check."""

LOSSES = ("squared", "huber")
"""The losses whose flow this module integrates (the residual is −∂ℓ/∂ŷ)."""

_FORWARD_MAX_STEPS = 1_000_000
# Reverse mode checkpoints a budget of steps; a few thousand is ample (a smooth
# flow to t = O(1) takes tens of steps at rtol 1e-9) and keeps the recompute cheap.
_REVERSE_MAX_STEPS = 4096
_STEPS_OPTION = "--t-max (or the limit's rtol/atol)"


class SGDNoiseWarning(UserWarning):
    """The predicted covariance leaves out the data noise of online or minibatch SGD."""


# Particles -----------------------------------------------------------------

class Particles(eqx.Module):
    """A weighted particle approximation μ = Σ_k m_k δ_{(c_k, w_k)} of a law of neurons.

    Attributes:
        c: output weights, shape (K,).
        w: input weights, shape (K, d).
        weights: the masses m_k ≥ 0, shape (K,), summing to 1.
    """

    c: jax.Array
    w: jax.Array
    weights: jax.Array

    def __check_init__(self):
        k = np.shape(self.c)
        if len(k) != 1 or np.ndim(self.w) != 2 or np.shape(self.w)[0] != k[0] \
                or np.shape(self.weights) != k:
            raise InputError(
                f"particles need c (K,), w (K, d) and weights (K,), got "
                f"{np.shape(self.c)}, {np.shape(self.w)}, {np.shape(self.weights)}"
            )
        for name in ("c", "w", "weights"):
            value = getattr(self, name)
            if not isinstance(value, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(value))):
                raise InputError(f"particle {name} must be finite")

    @property
    def n_particles(self) -> int:
        return int(np.shape(self.c)[0])

    @property
    def dim(self) -> int:
        return int(np.shape(self.w)[1])

    def head(self, k: int) -> "Particles":
        """The first ``k`` particles, reweighted to total mass 1 (a nested coarser rule)."""
        w = self.weights[:k]
        return Particles(self.c[:k], self.w[:k], w / jnp.sum(w))


def network_particles(params: TwoLayerParams, dtype=None) -> Particles:
    """One mean-field network's N neurons as particles of mass 1/N each.

    With these particles the flow is the gradient flow that this network's
    full-batch gradient descent (step α/N) discretises.
    """
    c = jnp.asarray(params.c, dtype)
    w = jnp.asarray(params.w, dtype)
    if c.ndim != 1 or w.ndim != 2 or w.shape[0] != c.shape[0]:
        raise InputError(f"params must be one network's c (N,) and w (N, d), got {c.shape}, {w.shape}")
    return Particles(c, w, jnp.full(c.shape, 1.0 / c.shape[0], c.dtype))


def _inverse_cdf(law: InitLaw, u: np.ndarray, scale: float, mean: float) -> np.ndarray:
    """Map uniforms in (0, 1) to the law's one-dimensional marginal."""
    from scipy.special import ndtri

    if law.kind == "gaussian":
        return mean + scale * ndtri(u)
    return mean + scale * math.sqrt(3.0) * (2.0 * u - 1.0)


def sample_particles(law: InitLaw, dim: int, n_particles: int, *, rule: str = "sobol",
                     seed: int = 0, dtype=None) -> Particles:
    """A quadrature of the initial law of one neuron, with equal weights.

    Args:
        law: the law of (c, w) (independent coordinates).
        dim: the input dimension d.
        n_particles: K. The Sobol' rule rounds it up to a power of two.
        rule: ``"sobol"`` (a scrambled Sobol' net in d + 1 dimensions through
            the inverse CDF, randomised quasi-Monte Carlo) or ``"monte-carlo"``
            (i.i.d. draws from ``law.sample``).
        seed: the scrambling (or sampling) seed.
        dtype: float type (float64 when x64 is enabled, by default).

    The first K/2 particles of either rule are themselves a valid rule of
    half the size (:meth:`Particles.head`), which is how the discretisation
    error is estimated.
    """
    if rule not in RULES:
        raise InputError(f"unknown particle rule {rule!r}; choose {', '.join(RULES)}")
    if not isinstance(law, InitLaw):
        raise InputError(f"law must be an InitLaw, got {type(law).__name__}")
    n_particles = require_int(n_particles, "n_particles", low=2, high=2**40)
    dim = require_int(dim, "dim")
    seed = check_seed(seed)
    dtype = jnp.result_type(float) if dtype is None else dtype
    if rule == "monte-carlo":
        p = law.sample(jax.random.key(seed), n_particles, dim, dtype)
        return Particles(p.c, p.w, jnp.full((n_particles,), 1.0 / n_particles, dtype))
    from scipy.stats import qmc

    log2 = max(1, math.ceil(math.log2(n_particles)))
    u = qmc.Sobol(dim + 1, scramble=True, seed=seed).random_base2(log2)
    # Scrambled nets never hit 0 in exact arithmetic; guard the inverse CDF anyway.
    u = np.clip(u, 2.0**-60, 1.0 - 2.0**-53)
    c = _inverse_cdf(law, u[:, 0], law.c_std, law.c_mean)
    w = _inverse_cdf(law, u[:, 1:], law.w_std, 0.0)
    k = u.shape[0]
    return Particles(jnp.asarray(c, dtype), jnp.asarray(w, dtype), jnp.full((k,), 1.0 / k, dtype))


def particle_outputs(particles: Particles, x: jax.Array, activation) -> jax.Array:
    """ḡ(x) = Σ_k m_k c_k σ(w_k·x) on inputs ``x`` (P, d); returns shape (P,)."""
    act = get_activation(activation)
    if np.ndim(x) != 2 or np.shape(x)[1] != particles.dim:
        raise InputError(f"x must have shape (P, {particles.dim}), got {np.shape(x)}")
    return act(x @ particles.w.T) @ (particles.weights * particles.c)


# The flow ---------------------------------------------------------------------

class _Velocity(eqx.Module):
    """The particle velocity field v_t(θ) as a diffrax vector field.

    ``args = (weights (K,), x_train (M, d), y_train (M,))``; the state is (c, w).
    """

    # static: the vector field is part of diffrax's compiled solve; these fields select its code
    activation: Activation = eqx.field(static=True)
    alpha: float = eqx.field(static=True)
    loss: Loss = eqx.field(static=True)

    def residual(self, prediction, y):
        """r_j = −∂ℓ/∂ŷ (y_j − ŷ_j for the squared loss)."""
        return -jax.vmap(jax.grad(self.loss.fn))(prediction, y)

    def __call__(self, t, state, args):
        c, w = state
        weights, x, y = args
        pre = w @ x.T  # (K, M)
        features = self.activation(pre)
        r = self.residual(features.T @ (weights * c), y)  # (M,)
        scale = self.alpha / x.shape[0]
        dc = scale * (features @ r)
        dw = scale * ((c[:, None] * self.activation.derivative(pre) * r[None, :]) @ x)
        return dc, dw


class _Record(eqx.Module):
    """What is saved at each time: outputs on all points and the training loss."""

    # static: part of diffrax's compiled solve; these fields select its code
    activation: Activation = eqx.field(static=True)
    loss: Loss = eqx.field(static=True)
    x_all: jax.Array

    def __call__(self, t, state, args):
        c, w = state
        weights, x, y = args
        out = self.activation(self.x_all @ w.T) @ (weights * c)
        return out, jnp.mean(self.loss(out[: y.shape[0]], y))


class _Outputs(eqx.Module):
    """The outputs alone (what the influence functions differentiate)."""

    record: _Record

    def __call__(self, t, state, args):
        return self.record(t, state, args)[0]


class ParticleFlow(eqx.Module):
    """The particle gradient flow saved at given times.

    Attributes:
        times: shape (T,), starting at 0.
        outputs: ḡ_t on the M training points then the Q probes, shape (T, P).
        loss: the mean training loss of ḡ_t, shape (T,).
        feature_times: shape (T_f,), the times at which the particles were saved.
        c: particle output weights at ``feature_times``, shape (T_f, K).
        w: particle input weights at ``feature_times``, shape (T_f, K, d).
        weights: the particle masses, shape (K,).
        n_train: M.
    """

    times: np.ndarray
    outputs: jax.Array
    loss: jax.Array
    feature_times: np.ndarray
    c: jax.Array
    w: jax.Array
    weights: jax.Array
    # static: metadata of an array pytree; a tree_map over the arrays must not touch it
    n_train: int = eqx.field(static=True)

    @property
    def train_outputs(self) -> jax.Array:
        return self.outputs[:, : self.n_train]

    @property
    def probe_outputs(self) -> jax.Array:
        return self.outputs[:, self.n_train :]


def _positive_horizon(times) -> np.ndarray:
    t = validate_times(times)
    if t[-1] <= 0:
        raise InputError("times must include a positive training time")
    return t


def _tolerances(dtype, rtol: float, atol: float) -> tuple[float, float]:
    rtol = require_real(rtol, "rtol", high=1.0)
    atol = require_real(atol, "atol", high=1.0)
    # Tolerances below the floating-point resolution only make the solver stall.
    floor = 100.0 * float(jnp.finfo(dtype).eps)
    return max(rtol, floor), max(atol, floor)


@functools.lru_cache(maxsize=None)
def _named_loss(name: str) -> Loss:
    return get_loss(name)


def _as_loss(loss: str | Loss) -> Loss:
    # One Loss object per name: the vector field holds it as a static field, and a
    # fresh object per call would make diffrax recompile the solve every time.
    return _named_loss(loss) if isinstance(loss, str) else get_loss(loss)


def _solver(name: str):
    try:
        return SOLVERS[name]()
    except (KeyError, TypeError):
        raise InputError(f"unknown ODE solver {name!r}; choose {', '.join(SOLVERS)}") from None


def _check_data(data: Dataset, dim: int) -> None:
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a jaxlimit Dataset, got {type(data).__name__}")
    if data.dim != dim:
        raise InputError(f"data has input dimension {data.dim} but the particles have {dim}")


def solve_particle_flow(
    particles: Particles,
    data: Dataset,
    *,
    times,
    activation="tanh",
    alpha: float = 1.0,
    loss: str | Loss = "squared",
    feature_times=None,
    solver: str = "tsit5",
    rtol: float = 1e-9,
    atol: float = 1e-9,
    adjoint: diffrax.AbstractAdjoint = diffrax.RecursiveCheckpointAdjoint(),
) -> ParticleFlow:
    """Integrate the particle gradient flow on ``data``'s training set.

    Args:
        particles: the initial particles (:func:`sample_particles` for the
            limit, :func:`network_particles` for one network).
        data: the training set (outputs are also recorded on its probes).
        times: save times; t = 0 is added first if missing.
        activation: σ.
        alpha: the base rate α.
        loss: the per-sample loss (its derivative makes the residual).
        feature_times: times at which to save the particles themselves (the
            learned features); by default the first and the last time; an
            empty list saves none (and skips the solve that keeps them).
        solver: ``"tsit5"`` (default), ``"dopri8"`` or ``"dopri5"``, with an
            adaptive PID step-size controller at ``rtol``/``atol``.
        adjoint: how diffrax differentiates the solve; the default
            (``RecursiveCheckpointAdjoint``) supports reverse mode,
            ``diffrax.ForwardMode()`` forward mode (``jax.jvp``, nested for
            second derivatives with respect to the particle weights).

    Returns:
        A :class:`ParticleFlow`. The outputs and the particles come from two
        solves (:func:`~jaxlimit.limits._ode.solve_ode`): the particles are
        held only at ``feature_times``.
    """
    t = _positive_horizon(times)
    _check_data(data, particles.dim)
    alpha = require_real(alpha, "alpha", high=1e6)
    if feature_times is None:
        ft = np.array([t[0], t[-1]])
    elif np.size(feature_times) == 0:
        ft = np.zeros(0)
    else:
        ft = validate_times(feature_times)
    if ft.size and ft[-1] > t[-1]:
        raise InputError(f"feature_times must not exceed the last time {t[-1]:g}")
    dtype = particles.c.dtype
    rtol, atol = _tolerances(dtype, rtol, atol)
    act = get_activation(activation)
    loss = _as_loss(loss)
    x, y, x_all = (jnp.asarray(a, dtype) for a in (data.x_train, data.y_train, data.x_all))
    common = dict(args=(particles.weights, x, y), solver=_solver(solver), rtol=rtol, atol=atol,
                  max_steps=_FORWARD_MAX_STEPS, adjoint=adjoint, steps_option=_STEPS_OPTION)
    field = _Velocity(act, float(alpha), loss)
    y0 = (particles.c, particles.w)
    outputs, loss_t = solve_ode(field, y0, t, save=_Record(act, loss, x_all), **common)
    if ft.size:
        c_t, w_t = solve_ode(field, y0, ft, **common)
    else:
        c_t, w_t = particles.c[None][:0], particles.w[None][:0]
    return ParticleFlow(times=t, outputs=outputs, loss=loss_t, feature_times=ft, c=c_t, w=w_t,
                        weights=particles.weights, n_train=data.n_train)


# Which networks the limit describes ------------------------------------------------

def _flow_settings(model: TwoLayer, data: Dataset, trainer: Trainer | None) -> tuple[Activation, float, Loss]:
    """Refuse a network, data or training the mean-field flow does not describe."""
    if not isinstance(model, TwoLayer):
        raise InputError(f"the mean-field limit describes two-layer networks, got {type(model).__name__}")
    if model.gamma != 1.0:
        raise InputError(
            f"the mean-field limit needs γ = 1 (scaling 'mean-field'), got γ = {model.gamma:g}; "
            "for γ < 1 the limit is kernel regression from h = 0 (xavier_limit's mean)"
        )
    trainer = Trainer() if trainer is None else trainer
    if not isinstance(trainer, Trainer):
        raise InputError(f"trainer must be a jaxlimit Trainer, got {type(trainer).__name__}")
    if trainer.method == "optax":
        raise InputError("the mean-field limit is the gradient flow of plain SGD or gradient descent; "
                         "it does not describe an optax optimizer")
    if trainer.loss.name.split("(")[0] not in LOSSES:
        raise InputError(f"the mean-field flow is implemented for the squared and Huber losses, got "
                         f"{trainer.loss.name!r}")
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a jaxlimit Dataset, got {type(data).__name__}")
    if data.dim != model.dim:
        raise InputError(f"data has input dimension {data.dim} but the model expects {model.dim}")
    return model.activation, float(trainer.alpha), trainer.loss


def _sgd_caveat(method: str) -> str:
    return (f"training is {method} SGD: the mean-field flow is its limit too, but the predicted "
            "covariance covers full-batch descent only; the data noise of SGD adds an O(1/N) covariance "
            "of the same order that the prediction leaves out, so it underestimates the spread")


# The limit --------------------------------------------------------------------

class MeanFieldLimit(Limit):
    """The deterministic mean-field limit h̄_t of a γ = 1 network, and its predicted fluctuations.

    Made by :func:`mean_field_limit` from the model, data and trainer that an
    ensemble is trained with. :meth:`predict` gives the protocol every limit
    answers: a :class:`~jaxlimit.stats.Gaussian` over times.

    Attributes:
        flow: the K-particle solution at the construction times (outputs, loss
            and the particles at ``flow.feature_times``: the learned law of the
            neurons).
        coarse_outputs: the nested K/2-particle solution, shape (T, P).
        quadrature_error: max |K-particle − K/2-particle| over times and points,
            a conservative estimate of the K-particle quadrature error.
        solver_error: max |Tsit5 − Dopri8 at 1/100 of the tolerance| on the
            K/2 particles.
        particles: the quadrature of the initial law (to solve at other times).
        width: N, the width of the model whose fluctuations :meth:`predict` gives.
        method: the trainer's method (the covariance is complete for "fullbatch").
        fluctuation_particles, fluctuation_seed: the quadrature of the influence
            functions behind the covariance.
        init_law, activation, alpha, loss, rule, seed, rtol, atol: how it was made.
    """

    flow: ParticleFlow
    coarse_outputs: jax.Array
    particles: Particles
    quadrature_error: float
    solver_error: float
    width: int
    method: str
    fluctuation_particles: int
    fluctuation_seed: int
    init_law: InitLaw
    activation: Activation
    alpha: float
    loss: Loss
    rule: str
    seed: int
    rtol: float
    atol: float
    data: Dataset

    @property
    def times(self) -> np.ndarray:
        return self.flow.times

    @property
    def outputs(self) -> jax.Array:
        """h̄_t at the construction times, shape (T, P): training points then probes."""
        return self.flow.outputs

    @property
    def train_outputs(self) -> jax.Array:
        return self.flow.train_outputs

    @property
    def probe_outputs(self) -> jax.Array:
        return self.flow.probe_outputs

    @property
    def loss_curve(self) -> jax.Array:
        """The limit's training loss at the construction times, shape (T,)."""
        return self.flow.loss

    @property
    def n_particles(self) -> int:
        return int(self.flow.weights.shape[0])

    @property
    def discretisation_error(self) -> float:
        """quadrature_error + solver_error: the reported accuracy of h̄_t."""
        return self.quadrature_error + self.solver_error

    @property
    def covariance_complete(self) -> bool:
        """Whether the predicted covariance is the whole O(1/N) covariance (full-batch descent)."""
        return self.method == "fullbatch"

    def mean(self, times) -> jax.Array:
        """h̄_t at ``times`` (non-decreasing, ≥ 0), shape (T, P), from the K particles."""
        t = check_times(times)
        known = self.flow.times
        idx = np.minimum(np.searchsorted(known, t), len(known) - 1)
        if np.array_equal(known[idx], t):
            return self.flow.outputs[idx]
        grid, index = _grid(t)
        if grid[-1] == 0.0:
            h0 = particle_outputs(self.particles, self.data.x_all, self.activation)
            return jnp.broadcast_to(h0, (len(t), h0.shape[0]))
        flow = solve_particle_flow(self.particles, self.data, times=grid, activation=self.activation,
                                   alpha=self.alpha, loss=self.loss, rtol=self.rtol, atol=self.atol,
                                   feature_times=())
        return flow.outputs[index]

    def fluctuations(self, times) -> "FluctuationPrediction":
        """The predicted law of √N (h^N_t − h̄_t) at ``times`` (t = 0 added): see
        :func:`predict_fluctuations`, computed with this limit's settings."""
        return _fluctuations(self.particles_for_fluctuations(), self.data, _positive_horizon(times),
                             self.activation, self.alpha, self.loss, self.rtol, self.atol)

    def particles_for_fluctuations(self) -> Particles:
        """The quadrature of the influence functions (``fluctuation_particles``, ``fluctuation_seed``)."""
        return sample_particles(self.init_law, self.data.dim, self.fluctuation_particles, rule=self.rule,
                                seed=self.fluctuation_seed)

    def predict(self, times) -> Gaussian:
        """The predicted law of the width-N outputs h^N_t at ``times``: N(h̄_t, C_t / N).

        mean (T, P) is the deterministic limit output h̄_t (K particles, error
        ``discretisation_error``); cov (T, P, P) is C_t / N with N =
        ``self.width`` (the model's width) and C_t = Cov_{μ_0}[φ_t] the
        predicted covariance of √N (h^N_t − h̄_t) (:meth:`fluctuations`).

        The scale: the covariance is O(1/N) and the prediction is its leading
        term. Neglected: the O(1/N) bias of the mean (the second variation of
        the flow and the Euler step of full-batch descent; a shift of O(N^{-1/2})
        standard deviations), the relative O(1/N) corrections of the covariance,
        the O(N^{-1/2}) skewness, and the quadrature error of C_t. Under online
        or minibatch SGD the data noise adds a covariance of the same order 1/N
        that C_t leaves out (an :class:`SGDNoiseWarning` says so): the mean is
        still the limit, the covariance underestimates the spread. Details in
        the module docstring and docs/mean-field.md#what-the-prediction-neglects.
        """
        t = check_times(times)
        if not self.covariance_complete:
            _warnings.warn(_sgd_caveat(self.method), SGDNoiseWarning, stacklevel=2)
        grid, index = _grid(t)
        mean = self.mean(t)
        if grid[-1] == 0.0:
            particles = self.particles_for_fluctuations()
            phi = (particles.c[:, None] * self.activation(particles.w @ self.data.x_all.T)).T[None]
            cov = _covariance(phi, particles.weights)[None]
        else:
            cov = self.fluctuations(grid).cov
        return Gaussian(jnp.asarray(mean), jnp.asarray(cov)[index] / self.width, t)

    @property
    def fluctuation_scale(self) -> float:
        """1/N: the limit is deterministic and :meth:`predict`'s covariance is C_t/N at the model's width."""
        return 1.0 / self.width

    @property
    def assumptions(self) -> dict:
        """γ = 1 two-layer networks of this width and activation, trained at rate α on this loss."""
        return {"model": {"model": "two-layer", "gamma": 1.0, "width": self.width,
                          "activation": self.activation.name},
                "trainer": {"alpha": self.alpha, "loss": self.loss.name}}

    def warnings(self) -> list[str]:
        """What a reader of a comparison with this limit must know."""
        out = []
        if not self.covariance_complete:
            out.append(_sgd_caveat(self.method))
        if self.discretisation_error > 1e-3:
            out.append(f"the limit's discretisation error is {self.discretisation_error:.2g}; raise --particles")
        return out

    def describe(self) -> dict:
        return {
            "n_particles": self.n_particles,
            "rule": self.rule,
            "seed": self.seed,
            "rtol": self.rtol,
            "atol": self.atol,
            "quadrature_error": self.quadrature_error,
            "solver_error": self.solver_error,
            "width": self.width,
            "fluctuation_particles": self.fluctuation_particles,
            "fluctuation_seed": self.fluctuation_seed,
            "covariance_complete": self.covariance_complete,
        }


def _grid(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The strictly increasing grid from 0 through ``t``, and where each of ``t`` sits in it."""
    grid = np.unique(np.concatenate([[0.0], t]))
    return grid, np.searchsorted(grid, t)


def mean_field_limit(
    model: TwoLayer,
    data: Dataset,
    trainer: Trainer | None = None,
    *,
    times=None,
    n_particles: int = 2**18,
    fluctuation_particles: int = 2**14,
    rule: str = "sobol",
    seed: int = 0,
    fluctuation_seed: int = 1,
    feature_times=None,
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> MeanFieldLimit:
    """The mean-field limit of ``model`` (γ = 1) trained by ``trainer`` on ``data``.

    Refused with one :class:`~jaxlimit.errors.InputError` line: a model that is
    not a two-layer network with γ = 1, an optax trainer, a loss other than the
    squared or Huber loss, data of another dimension. The flow uses the
    model's own activation and initial law (any :class:`InitLaw`). The same
    flow is the limit of online SGD, minibatch SGD and full-batch descent (they
    share the drift); the predicted covariance covers full-batch descent only
    (:meth:`MeanFieldLimit.warnings` and an :class:`SGDNoiseWarning` from
    :meth:`MeanFieldLimit.predict` say so otherwise). Computed in float64
    when ``jax_enable_x64`` is on.

    Args:
        times: the times at which the flow and its error estimates are solved now
            (``limit.outputs``; t = 0 and 1 by default); :meth:`MeanFieldLimit.predict`
            solves at any others when asked.
        n_particles: K, the size of the quadrature of the initial law (2^18 by
            default: a few seconds on a CPU, error ~1e-5 for tanh).
        fluctuation_particles: K for the influence functions behind the
            covariance (2^14 by default: it needs far less accuracy than the mean).
        rule, seed: see :func:`sample_particles`.
        fluctuation_seed: the influence functions' quadrature seed (another than
            ``seed``, so the mean and the covariance are independent estimates).
        feature_times: times at which to keep the particles (the law of the
            neurons); by default the first and the last.
        rtol, atol: the adaptive solver's tolerances.
    """
    activation, alpha, loss = _flow_settings(model, data, trainer)
    method = "online" if trainer is None else trainer.method
    times = (0.0, 1.0) if times is None else times
    fluctuation_particles = require_int(fluctuation_particles, "fluctuation_particles", low=2, high=2**40)
    fluctuation_seed = check_seed(fluctuation_seed, "fluctuation_seed")
    particles = sample_particles(model.init_law, data.dim, n_particles, rule=rule, seed=seed)
    common = dict(times=times, activation=activation, alpha=alpha, loss=loss, rtol=rtol, atol=atol)
    fine = solve_particle_flow(particles, data, feature_times=feature_times, **common)
    coarse_particles = particles.head(particles.n_particles // 2)
    coarse = solve_particle_flow(coarse_particles, data, feature_times=(), **common)
    reference = solve_particle_flow(coarse_particles, data, solver="dopri8", feature_times=(),
                                    **{**common, "rtol": rtol / 100, "atol": atol / 100})
    quad_err = float(jnp.max(jnp.abs(fine.outputs - coarse.outputs)))
    solver_err = float(jnp.max(jnp.abs(coarse.outputs - reference.outputs)))
    return MeanFieldLimit(
        flow=fine, coarse_outputs=coarse.outputs, particles=particles, quadrature_error=quad_err,
        solver_error=solver_err, width=model.width, method=method,
        fluctuation_particles=fluctuation_particles, fluctuation_seed=fluctuation_seed,
        init_law=model.init_law, activation=activation, alpha=alpha, loss=loss, rule=rule,
        seed=int(seed), rtol=float(rtol), atol=float(atol), data=data,
    )


# Fluctuations -------------------------------------------------------------------

class FluctuationPrediction(eqx.Module):
    """The predicted law of √N (h^N_t − h̄_t) for full-batch gradient flow.

    Attributes:
        times: shape (T,).
        mean: h̄_t from the particles used for the prediction, shape (T, P).
        cov: C_t = Cov_{μ_0}[φ_t], the covariance of √N (h^N_t − h̄_t), shape (T, P, P);
            the covariance of h^N_t itself at width N is C_t / N.
        joint_cov: the covariance across times too, shape (T·P, T·P), time-major.
        n_particles: K used for the influence functions.
    """

    times: np.ndarray
    mean: jax.Array
    cov: jax.Array
    joint_cov: jax.Array
    # static: metadata of an array pytree; a tree_map over the arrays must not touch it
    n_particles: int = eqx.field(static=True)

    def scaled_gaussian(self, index: int = -1) -> Gaussian:
        """N(0, C_t) at ``times[index]``: the predicted law of √N (h^N_t − h̄_t)."""
        return Gaussian(jnp.zeros_like(self.mean[index]), self.cov[index])

    def gaussian_at_width(self, width: int, mean=None, index: int = -1) -> Gaussian:
        """N(h̄_t, C_t / N): the predicted law of h^N_t for width N (mean h̄_t by default)."""
        width = require_int(width, "width")
        m = self.mean[index] if mean is None else jnp.asarray(mean)
        return Gaussian(m, self.cov[index] / width)


def influence_functions(particles: Particles, data: Dataset, *, times, activation="tanh",
                        alpha: float = 1.0, loss: str | Loss = "squared", rtol: float = 1e-9,
                        atol: float = 1e-9, batch_size: int = 8) -> tuple[jax.Array, jax.Array]:
    """φ_t(θ_k) = ∂h_t/∂m_k for every output and particle, by reverse mode.

    Returns:
        ``(outputs (T, P), phi (T, P, K))`` at ``times`` (t = 0 included).
        One backward pass per (t, point), ``batch_size`` of them at a time.
    """
    t = _positive_horizon(times)
    _check_data(data, particles.dim)
    alpha = require_real(alpha, "alpha", high=1e6)
    batch_size = require_int(batch_size, "batch_size", high=4096)
    dtype = particles.c.dtype
    rtol, atol = _tolerances(dtype, rtol, atol)
    act = get_activation(activation)
    loss = _as_loss(loss)
    x, y, x_all = (jnp.asarray(a, dtype) for a in (data.x_train, data.y_train, data.x_all))
    field = _Velocity(act, float(alpha), loss)
    save = _Outputs(_Record(act, loss, x_all))
    out, phi = _influence(field, save, particles, x, y, tuple(float(v) for v in t), float(rtol), float(atol),
                          batch_size)
    if not bool(jnp.all(jnp.isfinite(out))):
        raise InputError(f"the influence functions' solve left the finite numbers or needed more than "
                         f"{_REVERSE_MAX_STEPS} steps before t = {t[-1]:g}; reduce {_STEPS_OPTION}")
    return out, phi


@eqx.filter_jit
def _influence(field, save, particles, x, y, ts: tuple, rtol: float, atol: float, batch_size: int):
    # Compiled once per (shapes, times): ``ts`` is a tuple, so it is static here.
    def outputs_of(weights):
        return solve_ode(field, (particles.c, particles.w), np.asarray(ts), args=(weights, x, y), save=save,
                         rtol=rtol, atol=atol, max_steps=_REVERSE_MAX_STEPS, steps_option=_STEPS_OPTION,
                         adjoint=diffrax.RecursiveCheckpointAdjoint(), check=False)  # (T, P)

    out, pullback = jax.vjp(outputs_of, particles.weights)
    basis = jnp.eye(out.size, dtype=out.dtype).reshape(out.size, *out.shape)
    phi = jax.lax.map(lambda e: pullback(e)[0], basis, batch_size=batch_size)
    return out, phi.reshape(*out.shape, -1)


def _covariance(phi: jax.Array, weights: jax.Array) -> jax.Array:
    """Σ_k m_k (φ_k − φ̄)(φ_k − φ̄)ᵀ for φ of shape (T, P, K): the joint (T·P, T·P) covariance."""
    t_count, p_count, _ = phi.shape
    flat = phi.reshape(t_count * p_count, -1)
    centred = flat - (flat @ weights)[:, None]
    joint = (centred * weights[None, :]) @ centred.T
    return 0.5 * (joint + joint.T)


def _fluctuations(particles, data, t, activation, alpha, loss, rtol, atol) -> FluctuationPrediction:
    out, phi = influence_functions(particles, data, times=t, activation=activation, alpha=alpha, loss=loss,
                                   rtol=rtol, atol=atol)
    joint = _covariance(phi, particles.weights)
    t_count, p_count, _ = phi.shape
    idx = np.arange(t_count)
    blocks = joint.reshape(t_count, p_count, t_count, p_count)[idx, :, idx, :]
    return FluctuationPrediction(times=t, mean=out, cov=blocks, joint_cov=joint,
                                 n_particles=particles.n_particles)


def predict_fluctuations(
    model: TwoLayer,
    data: Dataset,
    trainer: Trainer | None = None,
    *,
    times,
    n_particles: int = 2**14,
    rule: str = "sobol",
    seed: int = 1,
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> FluctuationPrediction:
    """Predict Cov[√N (h^N_t − h̄_t)] = Cov_{μ_0}[φ_t] (see the module docstring).

    Exact (as N → ∞) for full-batch gradient descent; under online or
    minibatch SGD it is only the initial-sampling part and underestimates
    the covariance by the SGD-noise part. The covariance of h^N_t at width N
    is ``cov / N`` (:meth:`FluctuationPrediction.gaussian_at_width`, or
    :meth:`MeanFieldLimit.predict`).

    Args:
        model, data, trainer: as for :func:`mean_field_limit` (γ = 1).
        times: the times to predict at (t = 0 is added).
        n_particles: K for the influence functions (2^14 by default: the
            covariance needs far less accuracy than the mean).
        rule, seed: the quadrature of the initial law (a seed different from
            the limit's by default, so the two are independent estimates).
    """
    activation, alpha, loss = _flow_settings(model, data, trainer)
    particles = sample_particles(model.init_law, data.dim, n_particles, rule=rule, seed=seed)
    return _fluctuations(particles, data, _positive_horizon(times), activation, alpha, loss, rtol, atol)


__all__ = [
    "FluctuationPrediction", "LOSSES", "MeanFieldLimit", "ParticleFlow", "Particles", "RULES", "SGDNoiseWarning",
    "SOLVERS", "influence_functions", "mean_field_limit", "network_particles", "particle_outputs",
    "predict_fluctuations", "sample_particles", "solve_particle_flow",
]
