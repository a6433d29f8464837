"""The three-layer mean-field limit (docs/three-layer.md): coupling, step size, a proxy.

Width, by coupling (docs/three-layer.md#width-by-coupling). Member i of a run
has its initial weights and its SGD sample stream from (members' stream, i)
alone, and :class:`~jaxlimit.models.ThreeLayer` draws weights so that a
width-n network is the leading sub-block of every wider one from the same
key; ⌊t/ε⌋ steps reach time t at every width. So member i at width n and
member i at the widest width N, run from ONE members' stream, are one network
and its sub-network, fed the same samples with the width-correct rates, and
their difference is the finite-width error of the narrower one, up to that of
the widest:

    output gap(n, t) = RMS over points of |ŷ_n(x, t) − ŷ_N(x, t)|  ~  n^{-1/2}
    weight gap(n, t) = RMS over the leading K×K block of the weight differences

Both widths' errors are sums over the same leading units, so to leading order
E gap² ∝ 1/n − 1/N (nested averages); fits against n_eff = (1/n − 1/N)^{-1}
remove that bias near n = N.

Step size (docs/three-layer.md#step-size): at a fixed width, ε → 0 gives
gradient flow on the empirical loss (SGD samples uniformly, so its drift is
the full-batch gradient), integrated here with diffrax (through
:func:`~jaxlimit.limits._ode.solve_ode`) from the same initial weights.
Full-batch gradient descent is its Euler scheme (error ∝ ε); one-pass SGD adds
sampling noise (error ∝ √ε).

The limit itself (docs/three-layer.md#the-limit) is deterministic, an
evolution of functions on the neuronal embedding that jaxlimit does not
solve; :func:`three_layer_limit` estimates it by a wide proxy and states the
1/n scale of the fluctuations around it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.config import require_int, require_real
from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.base import Limit
from jaxlimit.limits._ode import DEFAULT_MAX_STEPS, solve_ode
from jaxlimit.models.three_layer import ThreeLayer, ThreeLayerParams
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.stats.summaries import Estimate, root_mean_square
from jaxlimit.training import EnsembleResult, Trainer, member_keys, run_ensemble, validate_times
from jaxlimit.training.program import generic_program

BLOCK_OBSERVABLE = "leading_block"


def leading_block(params: ThreeLayerParams, params0, data, *, k: int) -> jax.Array:
    """Observable: the leading k units' weights, flattened (k d + k² + k entries)."""
    return jnp.concatenate([params.w1[:k].ravel(), params.w2[:k, :k].ravel(), params.w3[:k]])


def _check_data(model: ThreeLayer, data: Dataset) -> None:
    if not isinstance(model, ThreeLayer):
        raise InputError(f"model must be a ThreeLayer network, got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a jaxlimit Dataset, got {type(data).__name__}")
    if data.dim != model.dim:
        raise InputError(f"data has input dimension {data.dim} but the model expects {model.dim}")


# Width, by coupling ------------------------------------------------------------------


class WidthCoupling(eqx.Module):
    """Coupled runs at several widths n (n1 = n2 = n), widest last.

    Attributes:
        widths: increasing widths.
        results: one :class:`EnsembleResult` per width; member i is the same
            network (and sample stream) at every width.
        block: K, the leading units whose weights were recorded.
        dim: the input dimension (to split the recorded block).
    """

    widths: tuple[int, ...] = eqx.field(static=True)
    results: tuple[EnsembleResult, ...]
    block: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    @property
    def times(self) -> np.ndarray:
        return self.results[0].times

    @property
    def widest(self) -> EnsembleResult:
        return self.results[-1]

    def n_coupled(self, i: int) -> int:
        """Members shared by width i and the widest run."""
        return min(self.results[i].n_members, self.widest.n_members)

    def effective_widths(self) -> np.ndarray:
        """n_eff = (1/n − 1/N)^{-1} for every width but the widest."""
        n = np.asarray(self.widths[:-1], float)
        return 1.0 / (1.0 / n - 1.0 / self.widths[-1])

    def block_weights(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The recorded leading block at width i: w1 (E, T, K, d), w2 (E, T, K, K), w3 (E, T, K)."""
        v = self.results[i].observables[BLOCK_OBSERVABLE]
        k, d = self.block, self.dim
        e, t = v.shape[:2]
        return (v[..., : k * d].reshape(e, t, k, d), v[..., k * d : k * d + k * k].reshape(e, t, k, k),
                v[..., k * d + k * k :])


def run_width_coupling(
    model: ThreeLayer,
    data: Dataset,
    trainer: Trainer | None = None,
    *,
    widths: Sequence[int],
    times,
    members: int | Sequence[int],
    seed: int | jax.Array = 0,
    **engine,
) -> WidthCoupling:
    """Train ``model`` at each width n (n1 = n2 = n) from one members' stream.

    Args:
        model: the network description; its widths are replaced by each n.
        data: training set and probes.
        trainer: online SGD with α = 1 if omitted.
        widths: at least two distinct widths; the widest is the reference.
        times: saved times (t = 0 is added).
        members: the ensemble size at every width, or one per width. Gaps use
            the members each width shares with the widest run.
        seed: the members' stream (an integer or a key), the SAME at every
            width: that sharing is the coupling. (Ensembles meant to be
            independent across widths need one stream per width instead.)
        **engine: passed to :func:`~jaxlimit.training.run_ensemble`
            (``chunk_size``, ``memory_budget``, ``checkpoint_dir``, ``fresh``,
            ``progress``, ``dtype``).

    Returns:
        A :class:`WidthCoupling`.
    """
    trainer = Trainer() if trainer is None else trainer
    _check_data(model, data)
    widths = [require_int(n, "widths") for n in widths]
    if len(widths) < 2 or len(set(widths)) != len(widths):
        raise InputError(f"widths needs at least two distinct widths, got {widths}")
    order = np.argsort(widths)
    widths = [widths[i] for i in order]
    if isinstance(members, (int, np.integer)):
        members = [int(members)] * len(widths)
    elif len(members) == len(widths):
        members = [int(members[i]) for i in order]
    else:
        raise InputError(f"members must be one integer or one per width ({len(widths)}), got {members}")
    members = [require_int(e, "members") for e in members]
    block = widths[0]
    t = validate_times(times)
    observables = {BLOCK_OBSERVABLE: functools.partial(leading_block, k=block)}
    results = tuple(
        run_ensemble(model.replace(n1=n, n2=n), data, trainer, times=t, n_members=e, seed=seed,
                     observables=observables, **engine)
        for n, e in zip(widths, members)
    )
    return WidthCoupling(widths=tuple(widths), results=results, block=block, dim=data.dim)


def _coupled_finite(c: WidthCoupling, i: int) -> np.ndarray:
    e = c.n_coupled(i)
    return ~(np.asarray(c.results[i].diverged[:e]) | np.asarray(c.widest.diverged[:e]))


def output_gaps(c: WidthCoupling) -> list[np.ndarray]:
    """Per width but the widest: (E_c, T) RMS over points of |ŷ_n − ŷ_N|.

    Members that diverged at either width are NaN.
    """
    gaps = []
    for i in range(len(c.widths) - 1):
        e = c.n_coupled(i)
        diff = c.results[i].outputs[:e].astype(np.float64) - c.widest.outputs[:e]
        g = np.sqrt(np.mean(diff**2, axis=-1))
        g[~_coupled_finite(c, i)] = np.nan
        gaps.append(g)
    return gaps


def weight_gaps(c: WidthCoupling) -> list[np.ndarray]:
    """Per width but the widest: (E_c, T) weight gap on the leading block.

    Each layer's RMS entry difference, squared, averaged over the three layers
    (so each layer counts once whatever its number of entries), square-rooted.
    """
    ref = c.block_weights(len(c.widths) - 1)
    gaps = []
    for i in range(len(c.widths) - 1):
        e = c.n_coupled(i)
        mine = c.block_weights(i)
        ms = [np.mean((a[:e].astype(np.float64) - b[:e]).reshape(e, a.shape[1], -1) ** 2, axis=-1)
              for a, b in zip(mine, ref)]
        g = np.sqrt(np.mean(ms, axis=0))
        g[~_coupled_finite(c, i)] = np.nan
        gaps.append(g)
    return gaps


def summarize_gaps(gaps: list[np.ndarray]) -> list[Estimate]:
    """One estimate per width: the RMS over coupled members of sup_t gap(t), with its standard error."""
    return [root_mean_square(np.max(g, axis=1)) for g in gaps]


# Step size -----------------------------------------------------------------------------


def gradient_flow(model: ThreeLayer, params0: ThreeLayerParams, data: Dataset, times, *,
                  alpha: float = 1.0, loss="squared", rtol: float | None = None,
                  atol: float | None = None, max_steps: int = DEFAULT_MAX_STEPS) -> tuple[jax.Array, jax.Array]:
    """The ε → 0 limit at fixed width: dθ/dt = −α ξ ⊙ g_MF(θ) on the full batch.

    g_MF is :meth:`ThreeLayer.mean_field_gradient` of the mean training loss,
    integrated by :func:`~jaxlimit.limits._ode.solve_ode` (Tsit5, adaptive
    steps, tolerances from ``params0``'s dtype unless given, at most
    ``max_steps`` of them). ``params0`` may carry a leading member axis (E
    networks integrated together).

    Returns:
        outputs ((E,) T, M + Q) on training and probe points, and the mean
        training loss ((E,) T), at ``times``.
    """
    from jaxlimit.losses import get_loss

    _check_data(model, data)
    loss = get_loss(loss)
    alpha = require_real(alpha, "alpha")
    if params0.w1.ndim not in (2, 3):
        raise InputError(f"params0.w1 must have shape ([E,] n1, d), got {params0.w1.shape}")
    batched = params0.w1.ndim == 3
    dtype = params0.w1.dtype
    x, y = data.x_train.astype(dtype), data.y_train.astype(dtype)
    rates = ThreeLayerParams(*(alpha * v for v in model.xi))

    def one(theta):
        g = model.mean_field_gradient(theta, x, y, loss)
        return jax.tree_util.tree_map(lambda gi, r: -r * gi, g, rates)

    field = (lambda s, theta, args: jax.vmap(one)(theta)) if batched else (lambda s, theta, args: one(theta))
    path = solve_ode(field, params0, times, rtol=rtol, atol=atol, max_steps=max_steps, steps_option="--refine-t-max")
    x_all = data.x_all.astype(dtype)
    apply = jax.vmap(lambda p: model.apply(p, x_all))  # over times
    outputs = jax.vmap(apply, in_axes=1, out_axes=0)(path) if batched else apply(path)
    losses = jnp.mean(loss(outputs[..., : data.n_train], y), axis=-1)
    return outputs, losses


class StepRefinement(eqx.Module):
    """Gaps to gradient flow at one width for decreasing steps ε.

    Attributes:
        epsilons: the steps, shape (K,), decreasing.
        method: ``"fullbatch"`` (expected gap ∝ ε) or ``"online"`` (∝ √ε).
        gaps: shape (K, E): RMS over points of |ŷ_ε − ŷ_flow| at t_max, per member
            (NaN for a member that diverged).
        t_max: the comparison time.
        width: n1 = n2.
    """

    epsilons: np.ndarray
    method: str = eqx.field(static=True)
    gaps: np.ndarray
    t_max: float = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def rms_gaps(self) -> list[Estimate]:
        """Per step: the RMS over members of the gap, with its standard error."""
        return [root_mean_square(g) for g in self.gaps]


def step_size_refinement(model: ThreeLayer, data: Dataset, trainer: Trainer, *, epsilons: Sequence[float],
                         t_max: float, n_members: int = 4, seed: int | jax.Array = 0,
                         dtype=jnp.float64, **engine) -> StepRefinement:
    """Train members 0..E−1 at each ε and compare them with their own gradient flow.

    The networks (``model`` at each ε, trained by ``trainer``: ``"fullbatch"``
    or ``"online"``) come from :func:`~jaxlimit.training.run_ensemble` with the
    members' stream ``seed``; each member's flow starts from the same initial
    weights, drawn by the engine's own member program. ``engine`` options
    (checkpoints, progress, memory budget) go to every ``run_ensemble`` call.
    """
    _check_data(model, data)
    if not isinstance(trainer, Trainer) or trainer.method not in ("fullbatch", "online"):
        raise InputError("step-size refinement compares full-batch descent or online SGD with the flow, got "
                         f"{getattr(trainer, 'method', trainer)!r}")
    n_members = require_int(n_members, "n_members")
    t_max = require_real(t_max, "t_max")
    eps = np.asarray(sorted((require_real(e, "epsilons") for e in epsilons), reverse=True))
    if eps.size < 2 or len(set(eps.tolist())) != eps.size:
        raise InputError(f"epsilons needs at least two distinct positive steps, got {list(epsilons)}")
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        raise InputError("a float64 refinement needs jax.config.update('jax_enable_x64', True)")
    for e in eps:
        if abs(model.replace(eps=float(e)).steps_to(t_max) * e - t_max) > 1e-9 * max(1.0, t_max):
            raise InputError(f"t_max = {t_max:g} is not a whole number of steps of {e:g}")
    init = generic_program(model, trainer, {}, dtype).init
    typed = jax.tree_util.tree_map(lambda a: a.astype(dtype), data)
    keys = member_keys(seed, jnp.arange(n_members, dtype=jnp.uint32))
    params0 = jax.vmap(lambda k: init(k, typed)[0])(keys)
    flow, _ = gradient_flow(model, params0, data, [0.0, t_max], alpha=trainer.alpha, loss=trainer.loss)
    flow_end = np.asarray(flow[:, -1], np.float64)
    gaps = []
    for e in eps:
        r = run_ensemble(model.replace(eps=float(e)), data, trainer, times=[0.0, t_max], n_members=n_members,
                         seed=seed, dtype=dtype, **engine)
        g = np.sqrt(np.mean((np.asarray(r.outputs[:, -1], np.float64) - flow_end) ** 2, axis=-1))
        g[np.asarray(r.diverged)] = np.nan
        gaps.append(g)
    return StepRefinement(epsilons=eps, method=trainer.method, gaps=np.stack(gaps), t_max=float(t_max),
                          width=model.n1)


# The limit, by a proxy ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProxyEstimate:
    """What the proxy ensemble says about the limit at some times.

    Attributes:
        times: shape (T,).
        mean: the proxy's ensemble mean, (T, P): the limit's outputs up to an
            O(1/N_p + ε_p) bias.
        mean_se: its Monte Carlo standard error, (T, P).
        scaled_cov: N_p × the proxy's seed covariance (ddof = 1), (T, P, P):
            the covariance of a width-n network's outputs is scaled_cov / n.
        proxy_width: N_p.
        result: the proxy ensemble (diverged members flagged).
    """

    times: np.ndarray
    mean: np.ndarray
    mean_se: np.ndarray
    scaled_cov: np.ndarray
    proxy_width: int
    result: EnsembleResult

    def law(self, width: int) -> Gaussian:
        """The predicted law of a width-``width`` network's outputs: mean (T, P), cov scaled_cov / width."""
        width = require_int(width, "width")
        if width >= self.proxy_width:
            raise InputError(f"the proxy of width {self.proxy_width} describes narrower networks, got width {width}")
        return Gaussian(self.mean, self.scaled_cov / width, np.asarray(self.times, np.float64))


class ThreeLayerLimit(Limit):
    """The deterministic three-layer mean-field limit, estimated by a wide proxy.

    jaxlimit does not solve the limit (weights that are functions on the
    neuronal embedding, docs/three-layer.md#the-limit). The proxy is E_p
    networks of width N_p (n1 = n2 = N_p, wider than the networks described)
    from the model's initial law, trained by full-batch gradient descent at
    the step ε_p with the model's rates. For width-n networks (n = n1 = n2 of
    ``model``) trained by full-batch descent, :meth:`predict` answers

        mean(t)      = the proxy's ensemble mean: the limit up to an O(1/N_p + ε_p)
                       bias and a Monte Carlo error (``ProxyEstimate.mean_se``);
        cov(t) at n  = scaled_cov(t) / n,  scaled_cov = N_p · (the proxy's seed covariance),

    the leading 1/n term of the fluctuations around the limit (the spread
    across seeds falls like n^{-1/2}, docs/three-layer.md#spread-across-seeds).
    It is a leading-order statement: the variance at width n is
    Σ(t)/n + O(1/n²), and scaled_cov = Σ(t) + O(1/N_p). Where Σ(t) is small
    the next order dominates at every width one can run: at t = 0 with an odd
    φ1 the limit has H2 = 0, so a network's output spread is O(1/n) (variance
    O(1/n²)) and the prediction understates narrower networks' spread until
    training has moved H2 away from 0. The covariance has rank at most E_p − 1,
    so it is singular when E_p ≤ P.

    Why full batch: its only randomness is the initial draw, so the proxy's
    seed covariance is that 1/n part alone. Online SGD adds sampling noise of
    variance O(ε) that does not shrink with n: networks trained online follow
    the same limit mean but not this covariance, and are refused. Also
    refused: a stationary start (docs/three-layer.md#the-degenerate-start:
    the limit stays at ŷ = φ3(0) while every finite network leaves it after a
    plateau that lengthens with n, so no finite proxy and no 1/n law describe
    it), n1 ≠ n2, and a proxy no wider than the networks.
    """

    model: ThreeLayer
    data: Dataset
    trainer: Trainer
    proxy_width: int = eqx.field(static=True)
    proxy_ensemble: int = eqx.field(static=True)
    proxy_step: float = eqx.field(static=True)
    seed: int | jax.Array
    engine: dict = eqx.field(static=True)

    @property
    def fluctuation_scale(self) -> float:
        """1/n: the covariance of :meth:`predict` is the proxy's scaled covariance over the model's width."""
        return 1.0 / self.model.n1

    @property
    def assumptions(self) -> dict:
        return {"model": {"model": self.model.describe().get("model"), "n1": self.model.n1, "n2": self.model.n2},
                "trainer": {"method": "fullbatch"}}

    @property
    def proxy_model(self) -> ThreeLayer:
        return self.model.replace(n1=self.proxy_width, n2=self.proxy_width, eps=self.proxy_step)

    def estimate(self, times) -> ProxyEstimate:
        """Train the proxy ensemble to ``times`` (through the engine, so it checkpoints) and summarise it."""
        t = validate_times(times)
        result = run_ensemble(self.proxy_model, self.data, self.trainer, times=t, n_members=self.proxy_ensemble,
                              seed=self.seed, **self.engine)
        ok = result.finite()
        if ok.n_members < 2:
            raise InputError(f"only {ok.n_members} of {result.n_members} proxy networks stayed finite; the limit "
                             "cannot be estimated (reduce the step)")
        x = np.asarray(ok.outputs, np.float64)
        centred = x - x.mean(axis=0)
        cov = np.einsum("etp,etq->tpq", centred, centred) / (ok.n_members - 1)
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        mean_se = np.sqrt(np.diagonal(cov, axis1=1, axis2=2) / ok.n_members)
        return ProxyEstimate(result.times, x.mean(axis=0), mean_se, self.proxy_width * cov, self.proxy_width,
                             result)

    def predict(self, times) -> Gaussian:
        """The law of the model's outputs at ``times``: mean (T, P), cov (T, P, P) = scaled_cov / n."""
        return self.estimate(times).law(self.model.n1)


def three_layer_limit(model: ThreeLayer, data: Dataset, trainer: Trainer | None = None, *, proxy_width: int,
                      proxy_ensemble: int = 8, proxy_step: float | None = None, seed: int | jax.Array = 0,
                      **engine) -> ThreeLayerLimit:
    """The limit of ``model`` trained by ``trainer`` on ``data``, by a proxy (see :class:`ThreeLayerLimit`).

    Args:
        model: width-n networks, n1 = n2 = n.
        trainer: full-batch gradient descent (the default here); any other method is refused.
        proxy_width: N_p > n.
        proxy_ensemble: E_p ≥ 2 proxy networks.
        proxy_step: ε_p, the model's step by default.
        seed: the proxy members' stream (an integer or a key).
        **engine: options for :func:`~jaxlimit.training.run_ensemble` (checkpoints, progress, memory).
    """
    trainer = Trainer(method="fullbatch") if trainer is None else trainer
    _check_data(model, data)
    if not isinstance(trainer, Trainer) or trainer.method != "fullbatch":
        raise InputError(
            "the three-layer limit's covariance is the initial draw's 1/n fluctuation, which describes full-batch "
            f"descent; {getattr(trainer, 'method', trainer)!r} training adds sampling noise that does not shrink "
            "with the width: use method='fullbatch'")
    if model.n1 != model.n2:
        raise InputError(f"the proxy describes square networks n1 = n2, got n1 = {model.n1}, n2 = {model.n2}")
    if model.starts_stationary(np.asarray(data.x_train)):
        raise InputError(
            "this initial law is a stationary start of the limit (w3 = 0 and no w3 update; "
            "docs/three-layer.md#the-degenerate-start): the limit stays at ŷ = φ3(0) while finite networks leave "
            "it, so no proxy describes it")
    proxy_width = require_int(proxy_width, "proxy_width")
    if proxy_width <= model.n1:
        raise InputError(f"proxy_width must exceed the width it describes ({model.n1}), got {proxy_width}")
    proxy_ensemble = require_int(proxy_ensemble, "proxy_ensemble", low=2)
    proxy_step = model.eps if proxy_step is None else require_real(proxy_step, "proxy_step")
    return ThreeLayerLimit(model, data, trainer, proxy_width, proxy_ensemble, float(proxy_step), seed, dict(engine))


__all__ = [
    "BLOCK_OBSERVABLE", "ProxyEstimate", "StepRefinement", "ThreeLayerLimit", "WidthCoupling", "gradient_flow",
    "leading_block", "output_gaps", "run_width_coupling", "step_size_refinement", "summarize_gaps",
    "three_layer_limit", "weight_gaps",
]
