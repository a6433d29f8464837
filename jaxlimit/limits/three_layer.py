"""The three-layer mean-field limit (docs/three-layer.md): the step-size flow and a proxy limit.

Step size (docs/three-layer.md#step-size): at a fixed width, ε → 0 gives
gradient flow on the empirical loss (SGD samples uniformly, so its drift is
the full-batch gradient), integrated here with diffrax (through
:func:`~jaxlimit.limits._ode.solve_ode`) from the same initial weights:
:func:`gradient_flow`. Full-batch gradient descent is its Euler scheme
(error ∝ ε); one-pass SGD adds sampling noise (error ∝ √ε).

The limit itself (docs/three-layer.md#the-limit) is deterministic, an
evolution of functions on the neuronal embedding that jaxlimit does not
solve; :class:`ThreeLayerLimit` estimates it by a wide proxy ensemble and
states the 1/n scale of the fluctuations around it.

Limits never train: the runs (width coupling, step-size refinement, and the
proxy ensemble behind :func:`jaxlimit.three_layer_limit`) live in
:mod:`jaxlimit.training.three_layer`. A :class:`ThreeLayerLimit` is built
there with the function that trains its proxy, and trains it once per time
grid (at construction when given ``times``), answering later ``predict``
calls from the stored proxy.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.base import Limit
from jaxlimit.limits._ode import DEFAULT_MAX_STEPS, solve_ode
from jaxlimit.models.three_layer import ThreeLayer, ThreeLayerParams
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.training.steps import Trainer
from jaxlimit.validation import require_int, require_real, validate_times


def _check_data(model: ThreeLayer, data: Dataset) -> None:
    if not isinstance(model, ThreeLayer):
        raise InputError(f"model must be a ThreeLayer network, got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a jaxlimit Dataset, got {type(data).__name__}")
    if data.dim != model.dim:
        raise InputError(f"data has input dimension {data.dim} but the model expects {model.dim}")


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
    result: Any  # the EnsembleResult of the proxy ensemble (jaxlimit.training), at the grid it was trained to

    @classmethod
    def from_ensemble(cls, result, proxy_width: int) -> "ProxyEstimate":
        """Summarise a trained proxy ensemble (an :class:`~jaxlimit.training.EnsembleResult` of width-N_p
        networks): the mean and seed covariance of its finite members; InputError if fewer than two stayed finite."""
        ok = result.finite()
        if ok.n_members < 2:
            raise InputError(f"only {ok.n_members} of {result.n_members} proxy networks stayed finite; the limit "
                             "cannot be estimated (reduce the step)")
        x = np.asarray(ok.outputs, np.float64)
        centred = x - x.mean(axis=0)
        cov = np.einsum("etp,etq->tpq", centred, centred) / (ok.n_members - 1)
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        mean_se = np.sqrt(np.diagonal(cov, axis1=1, axis2=2) / ok.n_members)
        return cls(result.times, x.mean(axis=0), mean_se, proxy_width * cov, proxy_width, result)

    def at_times(self, times) -> "ProxyEstimate":
        """The estimate at ``times`` (each one of :attr:`times`, equal to 1e-6 relative); itself when they
        are all of them. InputError naming the first time the proxy was not trained to."""
        saved = np.asarray(self.times, np.float64)
        t = np.asarray(times, np.float64)
        if t.shape == saved.shape and np.array_equal(t, saved):
            return self
        index = []
        for v in t:
            hits = np.flatnonzero(np.isclose(saved, v, rtol=1e-6, atol=1e-9))
            if hits.size == 0:
                shown = ", ".join(f"{s:g}" for s in saved)
                raise InputError(f"the three-layer proxy was trained to the times [{shown}], not t = {v:g}; build "
                                 "the limit with times covering every time you predict at")
            index.append(int(hits[0]))
        index = np.asarray(index)
        return dataclasses.replace(self, times=saved[index], mean=self.mean[index], mean_se=self.mean_se[index],
                                   scaled_cov=self.scaled_cov[index])

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

    The proxy is trained once (by ``train_proxy``, which
    :func:`jaxlimit.three_layer_limit` sets to
    :func:`jaxlimit.training.three_layer.train_proxy`: this module trains
    nothing itself): to ``grid`` when the limit was built with times, and then
    ``predict`` answers at those times only; otherwise at the first
    ``predict`` of each new grid. Later calls are answered from ``proxies``.
    """

    model: ThreeLayer
    data: Dataset
    trainer: Trainer
    proxy_width: int
    proxy_ensemble: int
    proxy_step: float
    seed: int | jax.Array
    engine: dict
    train_proxy: Callable[["ThreeLayerLimit", np.ndarray], ProxyEstimate] | None = None
    """Trains the proxy ensemble to a time grid and summarises it (jaxlimit.training.three_layer.train_proxy)."""
    grid: tuple[float, ...] | None = None
    """The one time grid the proxy is trained to (``three_layer_limit(..., times=...)``); None: each new grid
    that ``predict`` asks for, once."""
    proxies: dict = eqx.field(default_factory=dict)
    """The trained proxies by time grid: each is trained once, then answered from here."""

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
        """The proxy's summary at ``times`` (t = 0 added): from a stored proxy whose grid holds them, else
        (no fixed grid) from the proxy trained once to this grid; refused (InputError) off a fixed grid."""
        t = validate_times(times)
        if self.grid is not None:  # one grid, trained once; times off it are refused
            if self.grid not in self.proxies:
                self.proxies[self.grid] = self._train(np.asarray(self.grid, np.float64))
            return self.proxies[self.grid].at_times(t)
        for proxy in self.proxies.values():
            if all(np.any(np.isclose(proxy.times, v, rtol=1e-6, atol=1e-9)) for v in t):
                return proxy.at_times(t)
        proxy = self.proxies[tuple(float(v) for v in t)] = self._train(t)
        return proxy.at_times(t)

    def _train(self, grid: np.ndarray) -> ProxyEstimate:
        if self.train_proxy is None:
            raise InputError("this ThreeLayerLimit has no proxy trainer; build it with jaxlimit.three_layer_limit")
        return self.train_proxy(self, grid)

    def predict(self, times) -> Gaussian:
        """The law of the model's outputs at ``times``: mean (T, P), cov (T, P, P) = scaled_cov / n."""
        return self.estimate(times).law(self.model.n1)


def check_proxy_settings(model: ThreeLayer, data: Dataset, trainer: Trainer | None, *, proxy_width: int,
                         proxy_ensemble: int, proxy_step: float | None) -> tuple[Trainer, int, int, float]:
    """The trainer (full batch by default), N_p, E_p and ε_p of a proxy limit of ``model``, or one InputError
    line naming what the proxy does not describe (see :class:`ThreeLayerLimit`)."""
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
    return trainer, proxy_width, proxy_ensemble, float(proxy_step)


__all__ = ["ProxyEstimate", "ThreeLayerLimit", "check_proxy_settings", "gradient_flow"]
