"""Training three-layer mean-field networks (docs/three-layer.md): width coupling, step size, the proxy.

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

Step size (docs/three-layer.md#step-size): :func:`step_size_refinement` trains
at decreasing ε and compares with the fixed-width gradient flow
:func:`~jaxlimit.limits.three_layer.gradient_flow` (full-batch descent is its
Euler scheme, error ∝ ε; one-pass SGD adds sampling noise, error ∝ √ε).

The limit, by a proxy (docs/three-layer.md#the-limit): :func:`three_layer_limit`
builds a :class:`~jaxlimit.limits.three_layer.ThreeLayerLimit` whose wide proxy
ensemble is trained here (:func:`train_proxy`), once per time grid.
"""

from __future__ import annotations

import functools
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.three_layer import (
    ProxyEstimate, ThreeLayerLimit, _check_data, check_proxy_settings, gradient_flow,
)
from jaxlimit.models.three_layer import ThreeLayer, ThreeLayerParams
from jaxlimit.stats.summaries import Estimate, root_mean_square
from jaxlimit.training.ensemble import member_keys, run_ensemble
from jaxlimit.training.program import generic_program
from jaxlimit.training.results import EnsembleResult
from jaxlimit.training.steps import Trainer
from jaxlimit.validation import require_int, require_real, validate_times

BLOCK_OBSERVABLE = "leading_block"


def leading_block(params: ThreeLayerParams, params0, data, *, k: int) -> jax.Array:
    """Observable: the leading k units' weights, flattened (k d + k² + k entries)."""
    return jnp.concatenate([params.w1[:k].ravel(), params.w2[:k, :k].ravel(), params.w3[:k]])


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

    widths: tuple[int, ...]
    results: tuple[EnsembleResult, ...]
    block: int
    dim: int

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
            (``execution``, ``checkpoint``, ``guards``, ``dtype``).

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
    method: str
    gaps: np.ndarray
    t_max: float
    width: int

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
    (``execution``, ``checkpoint``, ``guards``) go to every ``run_ensemble`` call.
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


def train_proxy(limit: ThreeLayerLimit, times) -> ProxyEstimate:
    """Train ``limit``'s proxy ensemble (E_p networks of width N_p at the step ε_p, full batch, from the
    members' stream ``limit.seed``) to ``times`` through the engine (so it checkpoints), and summarise it."""
    t = validate_times(times)
    result = run_ensemble(limit.proxy_model, limit.data, limit.trainer, times=t, n_members=limit.proxy_ensemble,
                          seed=limit.seed, **limit.engine)
    return ProxyEstimate.from_ensemble(result, limit.proxy_width)


def three_layer_limit(model: ThreeLayer, data: Dataset, trainer: Trainer | None = None, *, proxy_width: int,
                      proxy_ensemble: int = 8, proxy_step: float | None = None, seed: int | jax.Array = 0,
                      times=None, **engine) -> ThreeLayerLimit:
    """The limit of ``model`` trained by ``trainer`` on ``data``, by a proxy (see
    :class:`~jaxlimit.limits.three_layer.ThreeLayerLimit`).

    The proxy is trained once: here, to ``times``, when they are given (``predict`` then answers at those
    times, or some of them, and refuses others with one InputError line); otherwise at the first ``predict``
    of each new time grid, then answered from the stored proxy.

    Args:
        model: width-n networks, n1 = n2 = n.
        trainer: full-batch gradient descent (the default here); any other method is refused.
        proxy_width: N_p > n.
        proxy_ensemble: E_p ≥ 2 proxy networks.
        proxy_step: ε_p, the model's step by default.
        seed: the proxy members' stream (an integer or a key).
        times: the time grid to train the proxy to now (t = 0 added), or None.
        **engine: options for :func:`~jaxlimit.training.run_ensemble` (``execution``, ``checkpoint``,
            ``guards``).
    """
    trainer, proxy_width, proxy_ensemble, proxy_step = check_proxy_settings(
        model, data, trainer, proxy_width=proxy_width, proxy_ensemble=proxy_ensemble, proxy_step=proxy_step)
    grid = None if times is None else tuple(float(v) for v in validate_times(times))
    limit = ThreeLayerLimit(model, data, trainer, proxy_width, proxy_ensemble, proxy_step, seed, dict(engine),
                            train_proxy=train_proxy, grid=grid)
    if grid is not None:
        limit.estimate(grid)
    return limit


__all__ = [
    "BLOCK_OBSERVABLE", "StepRefinement", "WidthCoupling", "leading_block", "output_gaps", "run_width_coupling",
    "step_size_refinement", "summarize_gaps", "three_layer_limit", "train_proxy", "weight_gaps",
]
