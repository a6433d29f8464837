"""The mean-field limit (γ = 1) of the two-layer network and its fluctuations (THEORY §3).

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

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.activations import Activation, get_activation
from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.losses import Loss, get_loss
from jaxlimit.models.two_layer import InitLaw, TwoLayer, TwoLayerParams
from jaxlimit.training.ensemble import validate_times
from jaxlimit.training.steps import Trainer

RULES = ("sobol", "monte-carlo")
"""How :func:`sample_particles` discretises the initial law."""

SOLVERS = {"tsit5": diffrax.Tsit5, "dopri8": diffrax.Dopri8, "dopri5": diffrax.Dopri5}
"""ODE solvers by name; the default is Tsit5 and Dopri8 is the cross-check."""

_FORWARD_MAX_STEPS = 1_000_000
# Reverse mode checkpoints a budget of steps; a few thousand is ample (a smooth
# flow to t = O(1) takes tens of steps at rtol 1e-9) and keeps the recompute cheap.
_REVERSE_MAX_STEPS = 4096


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
        raise InputError(f"expected one network's parameters c (N,), w (N, d), got {c.shape}, {w.shape}")
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
    if isinstance(n_particles, bool) or int(n_particles) != n_particles or n_particles < 2:
        raise InputError(f"the number of particles must be an integer ≥ 2, got {n_particles}")
    if isinstance(dim, bool) or int(dim) != dim or dim < 1:
        raise InputError(f"input dimension must be a positive integer, got {dim}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    if rule == "monte-carlo":
        p = law.sample(jax.random.key(seed), int(n_particles), int(dim), dtype)
        k = int(n_particles)
        return Particles(p.c, p.w, jnp.full((k,), 1.0 / k, dtype))
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
    return act(x @ particles.w.T) @ (particles.weights * particles.c)


# The flow ---------------------------------------------------------------------

class _Velocity(eqx.Module):
    """The particle velocity field v_t(θ) as a diffrax vector field.

    ``args = (weights (K,), x_train (M, d), y_train (M,))``; the state is (c, w).
    """

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

    activation: Activation = eqx.field(static=True)
    loss: Loss = eqx.field(static=True)
    x_all: jax.Array

    def __call__(self, t, state, args):
        c, w = state
        weights, x, y = args
        out = self.activation(self.x_all @ w.T) @ (weights * c)
        return out, jnp.mean(self.loss(out[: y.shape[0]], y))


def _keep_state(t, state, args):
    return state


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
        n_steps: accepted solver steps.
    """

    times: np.ndarray
    outputs: jax.Array
    loss: jax.Array
    feature_times: np.ndarray
    c: jax.Array
    w: jax.Array
    weights: jax.Array
    n_train: int = eqx.field(static=True)
    n_steps: int = eqx.field(static=True)

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
    if not (rtol > 0 and atol > 0):
        raise InputError(f"tolerances must be positive, got rtol={rtol}, atol={atol}")
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
    except KeyError:
        raise InputError(f"unknown ODE solver {name!r}; choose {', '.join(SOLVERS)}") from None


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
            learned features); by default the first and the last time.
        solver: ``"tsit5"`` (default), ``"dopri8"`` or ``"dopri5"``, with an
            adaptive PID step-size controller at ``rtol``/``atol``.
        adjoint: how diffrax differentiates the solve; the default
            (``RecursiveCheckpointAdjoint``) supports reverse mode,
            ``diffrax.ForwardMode()`` forward mode (``jax.jvp``, nested for
            second derivatives with respect to the particle weights).

    Returns:
        A :class:`ParticleFlow`.
    """
    t = _positive_horizon(times)
    if data.dim != particles.dim:
        raise InputError(f"data has input dimension {data.dim} but the particles have {particles.dim}")
    if not (alpha > 0 and math.isfinite(alpha)):
        raise InputError(f"alpha must be a positive finite number, got {alpha}")
    ft = np.array([t[0], t[-1]]) if feature_times is None else validate_times(feature_times)
    if ft[-1] > t[-1]:
        raise InputError(f"feature times must not exceed the last time {t[-1]}")
    dtype = particles.c.dtype
    rtol, atol = _tolerances(dtype, rtol, atol)
    act = get_activation(activation)
    loss = _as_loss(loss)
    x, y, x_all = (jnp.asarray(a, dtype) for a in (data.x_train, data.y_train, data.x_all))
    saveat = diffrax.SaveAt(subs=[
        diffrax.SubSaveAt(ts=jnp.asarray(t, dtype), fn=_Record(act, loss, x_all)),
        diffrax.SubSaveAt(ts=jnp.asarray(ft, dtype), fn=_keep_state),
    ])
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_Velocity(act, float(alpha), loss)), _solver(solver),
        t0=0.0, t1=float(t[-1]), dt0=None, y0=(particles.c, particles.w),
        args=(particles.weights, x, y), saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=_FORWARD_MAX_STEPS,
        adjoint=adjoint,
    )
    (outputs, loss_t), (c_t, w_t) = sol.ys
    return ParticleFlow(
        times=t, outputs=outputs, loss=loss_t, feature_times=ft, c=c_t, w=w_t,
        weights=particles.weights, n_train=data.n_train, n_steps=int(sol.stats["num_steps"]),
    )


# The limit --------------------------------------------------------------------

class MeanFieldLimit(eqx.Module):
    """The deterministic mean-field limit h̄_t on the training and probe points.

    Attributes:
        flow: the K-particle solution (outputs, loss and the particles at
            ``flow.feature_times``: the learned law of the neurons).
        coarse_outputs: the nested K/2-particle solution, shape (T, P).
        quadrature_error: max |K-particle − K/2-particle| over times and points,
            a conservative estimate of the K-particle quadrature error.
        solver_error: max |Tsit5 − Dopri8 at 1/100 of the tolerance| on the
            K/2 particles.
        init_law, activation, alpha, loss, rule, seed, rtol, atol: how it was made.
    """

    flow: ParticleFlow
    coarse_outputs: jax.Array
    quadrature_error: float = eqx.field(static=True)
    solver_error: float = eqx.field(static=True)
    init_law: InitLaw = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)
    alpha: float = eqx.field(static=True)
    loss: Loss = eqx.field(static=True)
    rule: str = eqx.field(static=True)
    seed: int = eqx.field(static=True)
    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)

    @property
    def times(self) -> np.ndarray:
        return self.flow.times

    @property
    def outputs(self) -> jax.Array:
        """h̄_t, shape (T, P): training points then probes."""
        return self.flow.outputs

    @property
    def train_outputs(self) -> jax.Array:
        return self.flow.train_outputs

    @property
    def probe_outputs(self) -> jax.Array:
        return self.flow.probe_outputs

    @property
    def loss_curve(self) -> jax.Array:
        """The limit's training loss, shape (T,)."""
        return self.flow.loss

    @property
    def n_particles(self) -> int:
        return int(self.flow.weights.shape[0])

    @property
    def discretisation_error(self) -> float:
        """quadrature_error + solver_error: the reported accuracy of h̄_t."""
        return self.quadrature_error + self.solver_error

    def describe(self) -> dict:
        return {
            "n_particles": self.n_particles,
            "rule": self.rule,
            "seed": self.seed,
            "rtol": self.rtol,
            "atol": self.atol,
            "solver_steps": self.flow.n_steps,
            "quadrature_error": self.quadrature_error,
            "solver_error": self.solver_error,
        }


def _flow_settings(model: TwoLayer, trainer: Trainer | None) -> tuple[Activation, float, Loss]:
    if model.gamma != 1.0:
        raise InputError(
            f"the mean-field limit needs γ = 1 (scaling 'mean-field'), got γ = {model.gamma}; "
            "for γ < 1 the limit is kernel regression from h = 0 (see xavier_limit)"
        )
    trainer = Trainer() if trainer is None else trainer
    if trainer.method == "optax":
        raise InputError("the mean-field limit is the gradient flow of plain SGD/GD; "
                         "it does not describe an optax optimiser")
    return model.activation, float(trainer.alpha), trainer.loss


def mean_field_limit(
    model: TwoLayer,
    data: Dataset,
    trainer: Trainer | None = None,
    *,
    times,
    n_particles: int = 2**18,
    rule: str = "sobol",
    seed: int = 0,
    feature_times=None,
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> MeanFieldLimit:
    """The mean-field limit of ``model`` (γ = 1) trained by ``trainer`` on ``data``.

    The same limit serves online SGD, minibatch SGD and full-batch descent (they
    share the drift). ``model.width`` is irrelevant; its activation and initial
    law are used. Computed in float64 when ``jax_enable_x64`` is on.

    Args:
        n_particles: K, the size of the quadrature of the initial law (2^18 by
            default: a few seconds on a CPU, error ~1e-5 for tanh).
        rule, seed: see :func:`sample_particles`.
        feature_times: times at which to keep the particles (the law of the
            neurons); by default the first and the last.
        rtol, atol: the adaptive solver's tolerances.
    """
    activation, alpha, loss = _flow_settings(model, trainer)
    particles = sample_particles(model.init_law, data.dim, n_particles, rule=rule, seed=seed)
    common = dict(times=times, activation=activation, alpha=alpha, loss=loss, rtol=rtol, atol=atol)
    fine = solve_particle_flow(particles, data, feature_times=feature_times, **common)
    coarse_particles = particles.head(particles.n_particles // 2)
    coarse = solve_particle_flow(coarse_particles, data, **common)
    reference = solve_particle_flow(coarse_particles, data, solver="dopri8",
                                    **{**common, "rtol": rtol / 100, "atol": atol / 100})
    quad_err = float(jnp.max(jnp.abs(fine.outputs - coarse.outputs)))
    solver_err = float(jnp.max(jnp.abs(coarse.outputs - reference.outputs)))
    return MeanFieldLimit(
        flow=fine, coarse_outputs=coarse.outputs, quadrature_error=quad_err, solver_error=solver_err,
        init_law=model.init_law, activation=activation, alpha=alpha, loss=loss, rule=rule,
        seed=int(seed), rtol=float(rtol), atol=float(atol),
    )


# Fluctuations -------------------------------------------------------------------

class FluctuationPrediction(eqx.Module):
    """The predicted law of √N (h^N_t − h̄_t) for full-batch gradient flow.

    Attributes:
        times: shape (T,).
        mean: h̄_t from the particles used for the prediction, shape (T, P).
        cov: C_t = Cov_{μ_0}[φ_t], the covariance of √N (h^N_t − h̄_t), shape (T, P, P).
        joint_cov: the covariance across times too, shape (T·P, T·P), time-major.
        n_particles: K used for the influence functions.
    """

    times: np.ndarray
    mean: jax.Array
    cov: jax.Array
    joint_cov: jax.Array
    n_particles: int = eqx.field(static=True)

    def scaled_gaussian(self, index: int = -1):
        """N(0, C_t) at ``times[index]``: the predicted law of √N (h^N_t − h̄_t)."""
        from jaxlimit.stats import Gaussian

        return Gaussian(jnp.zeros_like(self.mean[index]), self.cov[index])

    def gaussian_at_width(self, width: int, mean=None, index: int = -1):
        """N(h̄_t, C_t / N): the predicted law of h^N_t for width N (mean h̄_t by default)."""
        from jaxlimit.stats import Gaussian

        if width < 1:
            raise InputError(f"width must be positive, got {width}")
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
    dtype = particles.c.dtype
    rtol, atol = _tolerances(dtype, rtol, atol)
    act = get_activation(activation)
    loss = _as_loss(loss)
    if data.dim != particles.dim:
        raise InputError(f"data has input dimension {data.dim} but the particles have {particles.dim}")
    x, y, x_all = (jnp.asarray(a, dtype) for a in (data.x_train, data.y_train, data.x_all))
    return _influence(_Velocity(act, float(alpha), loss), _Record(act, loss, x_all), particles, x, y,
                      jnp.asarray(t, dtype), rtol, atol, int(batch_size))


@eqx.filter_jit
def _influence(field, record, particles, x, y, ts, rtol, atol, batch_size):
    def outputs_of(weights):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Tsit5(), t0=0.0, t1=ts[-1], dt0=None,
            y0=(particles.c, particles.w), args=(weights, x, y),
            saveat=diffrax.SaveAt(ts=ts, fn=lambda tt, s, a: record(tt, s, a)[0]),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=_REVERSE_MAX_STEPS,
            adjoint=diffrax.RecursiveCheckpointAdjoint(),
        )
        return sol.ys  # (T, P)

    out, pullback = jax.vjp(outputs_of, particles.weights)
    basis = jnp.eye(out.size, dtype=out.dtype).reshape(out.size, *out.shape)
    phi = jax.lax.map(lambda e: pullback(e)[0], basis, batch_size=batch_size)
    return out, phi.reshape(*out.shape, -1)


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
    the covariance by the SGD-noise part.

    Args:
        model, data, trainer: as for :func:`mean_field_limit` (γ = 1).
        times: the times to predict at (t = 0 is added).
        n_particles: K for the influence functions (2^14 by default: the
            covariance needs far less accuracy than the mean).
        rule, seed: the quadrature of the initial law (a seed different from
            the limit's by default, so the two are independent estimates).
    """
    activation, alpha, loss = _flow_settings(model, trainer)
    particles = sample_particles(model.init_law, data.dim, n_particles, rule=rule, seed=seed)
    out, phi = influence_functions(particles, data, times=times, activation=activation,
                                   alpha=alpha, loss=loss, rtol=rtol, atol=atol)
    t_count, p_count, _ = phi.shape
    m = particles.weights
    flat = phi.reshape(t_count * p_count, -1)
    centred = flat - (flat @ m)[:, None]
    joint = (centred * m[None, :]) @ centred.T
    joint = 0.5 * (joint + joint.T)
    idx = np.arange(t_count)
    blocks = joint.reshape(t_count, p_count, t_count, p_count)[idx, :, idx, :]
    return FluctuationPrediction(times=_positive_horizon(times), mean=out, cov=blocks,
                                 joint_cov=joint, n_particles=particles.n_particles)


__all__ = [
    "FluctuationPrediction", "MeanFieldLimit", "ParticleFlow", "Particles", "RULES", "SOLVERS",
    "influence_functions", "mean_field_limit", "network_particles", "particle_outputs",
    "predict_fluctuations", "sample_particles", "solve_particle_flow",
]
