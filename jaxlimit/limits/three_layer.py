"""The three-layer mean-field limit, measured by coupling (THEORY §4).

Width: the limit is approached pathwise. Member i of a run has its initial
weights and its SGD sample stream from (seed, i) alone, and
:class:`~jaxlimit.models.ThreeLayer` draws weights so that a width-n network
is the leading sub-block of every wider one from the same key; ⌊t/ε⌋ steps
reach time t at every width. So member i at width n and member i at the widest
width N are one network and its sub-network, fed the same samples with the
width-correct rates, and their difference is the finite-width error of the
narrower one, up to that of the widest:

    output gap(n, t) = RMS over points of |ŷ_n(x, t) − ŷ_N(x, t)|  ~  n^{-1/2}
    weight gap(n, t) = RMS over the leading K×K block of the weight differences

Both widths' errors are sums over the same leading units, so to leading order
E gap² ∝ 1/n − 1/N (nested averages); fits against n_eff = (1/n − 1/N)^{-1}
remove that bias near n = N.

Step size: at a fixed width, ε → 0 gives gradient flow on the empirical loss
(SGD samples uniformly, so its drift is the full-batch gradient), integrated
here with diffrax from the same initial weights. Full-batch gradient descent is
its Euler scheme (error ∝ ε); one-pass SGD adds sampling noise (error ∝ √ε).
"""

from __future__ import annotations

from typing import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.losses import get_loss
from jaxlimit.models.three_layer import ThreeLayer, ThreeLayerParams
from jaxlimit.training import (
    DEFAULT_MEMORY_BUDGET, EnsembleResult, Trainer, member_keys, run_ensemble,
    validate_times,
)

BLOCK_OBSERVABLE = "leading_block"


def _leading_block(k: int):
    """Observable: the leading k units' weights, flattened (k d + k² + k entries)."""

    def observable(params: ThreeLayerParams, params0, data) -> jax.Array:
        return jnp.concatenate([params.w1[:k].ravel(), params.w2[:k, :k].ravel(), params.w3[:k]])

    return observable


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
    seed: int = 0,
    dtype=jnp.float32,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
) -> WidthCoupling:
    """Train ``model`` at each width n (n1 = n2 = n) with shared member ids.

    Args:
        model: the network description; its widths are replaced by each n.
        data: training set and probes.
        trainer: online SGD with α = 1 if omitted.
        widths: at least two distinct widths; the widest is the reference.
        times: saved times (t = 0 is added).
        members: the ensemble size at every width, or one per width. The
            widest run needs at least one; gaps use the members it shares
            with each width.
        seed: member i uses ``fold_in(key(seed), i)`` at every width.
        memory_budget: bytes for one compiled chunk, as in ``run_ensemble``.

    Returns:
        A :class:`WidthCoupling`.
    """
    trainer = Trainer() if trainer is None else trainer
    widths = [int(n) for n in widths]
    if len(widths) < 2 or any(n < 1 for n in widths) or len(set(widths)) != len(widths):
        raise InputError(f"need at least two distinct positive widths, got {widths}")
    order = np.argsort(widths)
    widths = [widths[i] for i in order]
    if isinstance(members, (int, np.integer)):
        members = [int(members)] * len(widths)
    else:
        members = [int(members[i]) for i in order] if len(members) == len(widths) else None
    if members is None or min(members) < 1:
        raise InputError("members must be a positive integer or one positive integer per width")
    block = widths[0]
    t = validate_times(times)
    results = []
    for n, e in zip(widths, members):
        results.append(run_ensemble(
            model.replace(n1=n, n2=n), data, trainer, times=t, n_members=e, seed=seed,
            memory_budget=memory_budget, dtype=dtype,
            observables={BLOCK_OBSERVABLE: _leading_block(block)}, progress=progress,
        ))
    return WidthCoupling(widths=tuple(widths), results=tuple(results), block=block, dim=data.dim)


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
        diff = c.results[i].outputs[:e] - c.widest.outputs[:e]
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
        ms = [np.mean((a[:e] - b[:e]).reshape(e, a.shape[1], -1) ** 2, axis=-1)
              for a, b in zip(mine, ref)]
        g = np.sqrt(np.mean(ms, axis=0))
        g[~_coupled_finite(c, i)] = np.nan
        gaps.append(g)
    return gaps


def summarize_gaps(gaps: list[np.ndarray]) -> np.ndarray:
    """One number per width: the RMS over coupled members of sup_t gap(t)."""
    return np.array([np.sqrt(np.nanmean(np.nanmax(g, axis=1) ** 2)) if np.any(np.isfinite(g))
                     else np.nan for g in gaps])


def seed_spread(result: EnsembleResult) -> tuple[np.ndarray, np.ndarray]:
    """The spread across seeds over time, from the finite members.

    Returns (output_spread (T,), loss_spread (T,)): the RMS over points of the
    across-member standard deviation of ŷ (ddof = 1), and the standard
    deviation of the training loss. NaN with fewer than two finite members.
    """
    ok = result.finite()
    if ok.n_members < 2:
        nan = np.full(len(result.times), np.nan)
        return nan, nan
    out = np.sqrt(np.mean(np.var(ok.outputs, axis=0, ddof=1), axis=-1))
    return out, np.std(ok.loss, axis=0, ddof=1)


def gradient_flow(model: ThreeLayer, params0: ThreeLayerParams, data: Dataset, times, *,
                  alpha: float = 1.0, loss="squared", rtol: float = 1e-9,
                  atol: float = 1e-9) -> tuple[jax.Array, jax.Array]:
    """The ε → 0 limit at fixed width: dθ/dt = −α ξ ⊙ g_MF(θ) on the full batch.

    g_MF is :meth:`ThreeLayer.mean_field_gradient` of the mean training loss.
    Integrated with diffrax (Tsit5, adaptive steps) in ``params0``'s dtype.

    Returns:
        outputs (T, M + Q) on training and probe points, and the mean
        training loss (T,), at ``times``.
    """
    loss = get_loss(loss)
    t = validate_times(times)
    dtype = params0.w1.dtype
    x, y = data.x_train.astype(dtype), data.y_train.astype(dtype)
    xi = ThreeLayerParams(*(alpha * v for v in model.xi))

    def field(s, theta, args):
        g = model.mean_field_gradient(theta, x, y, loss)
        return jax.tree_util.tree_map(lambda gi, r: -r * gi, g, xi)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), t0=0.0, t1=float(t[-1]), dt0=None, y0=params0,
        saveat=diffrax.SaveAt(ts=jnp.asarray(t, dtype)),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=1_000_000,
    )
    x_all = data.x_all.astype(dtype)
    outputs = jax.vmap(lambda p: model.apply(p, x_all))(sol.ys)
    losses = jnp.mean(loss(outputs[:, : data.n_train], y), axis=1)
    return outputs, losses


class StepRefinement(eqx.Module):
    """Gaps to gradient flow at one width for decreasing steps ε.

    Attributes:
        epsilons: the steps, shape (K,).
        method: ``"fullbatch"`` (expected gap ∝ ε) or ``"online"`` (∝ √ε).
        gaps: shape (K, E): RMS over points of |ŷ_ε − ŷ_flow| at t_max, per member.
        t_max: the comparison time.
        width: n1 = n2.
    """

    epsilons: np.ndarray
    method: str = eqx.field(static=True)
    gaps: np.ndarray
    t_max: float = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def rms_gaps(self) -> np.ndarray:
        """(K,): the RMS over members of the gap."""
        return np.sqrt(np.nanmean(self.gaps**2, axis=1))


def step_size_refinement(model: ThreeLayer, data: Dataset, *, epsilons: Sequence[float],
                         t_max: float, method: str = "fullbatch", n_members: int = 4,
                         seed: int = 0, alpha: float = 1.0, loss="squared",
                         dtype=jnp.float64) -> StepRefinement:
    """Train members 0..E−1 at each ε and compare them with their gradient flow.

    The networks (``model`` at each ε) come from ``run_ensemble``; each
    member's flow starts from the same initial weights, rebuilt from the
    engine's key convention (member key split into init and data keys).
    """
    if method not in ("fullbatch", "online"):
        raise InputError(f"step-size refinement uses fullbatch or online, got {method!r}")
    eps = np.asarray(sorted(float(e) for e in epsilons))[::-1]
    if eps.size < 2 or np.any(eps <= 0) or len(set(eps.tolist())) != eps.size:
        raise InputError(f"need at least two distinct positive steps, got {list(epsilons)}")
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        raise InputError("a float64 refinement needs jax.config.update('jax_enable_x64', True)")
    for e in eps:
        if abs(model.replace(eps=float(e)).steps_to(t_max) * e - t_max) > 1e-9 * max(1.0, t_max):
            raise InputError(f"t_max = {t_max} is not a whole number of steps of {e}")
    trainer = Trainer(alpha=alpha, method=method, loss=get_loss(loss))
    keys = member_keys(seed, jnp.arange(n_members, dtype=jnp.uint32))
    params0 = jax.vmap(lambda k: model.init(jax.random.split(k)[0], dtype))(keys)
    flow = jax.jit(jax.vmap(lambda p: gradient_flow(model, p, data, [0.0, t_max], alpha=alpha,
                                                    loss=loss)[0][-1]))(params0)
    gaps = []
    for e in eps:
        m = model.replace(eps=float(e))
        r = run_ensemble(m, data, trainer, times=[0.0, t_max], n_members=n_members, seed=seed,
                         dtype=dtype)
        g = np.sqrt(np.mean((r.outputs[:, -1] - np.asarray(flow)) ** 2, axis=-1))
        g[np.asarray(r.diverged)] = np.nan
        gaps.append(g)
    return StepRefinement(epsilons=eps, method=method, gaps=np.stack(gaps), t_max=float(t_max),
                          width=model.n1)


__all__ = [
    "StepRefinement", "WidthCoupling", "gradient_flow", "output_gaps", "run_width_coupling",
    "seed_spread", "step_size_refinement", "summarize_gaps", "weight_gaps",
]
