"""Learning-rate transfer, measured: the training loss after a fixed budget against the base learning
rate at several widths, the optimal rate per width, and its drift with the width
(docs/parameterisations.md#transfer-measured).

For each width n, seed s and base rate α on a log grid α_1 < … < α_K, a network in the given
parameterisation (an MLP with L hidden layers, or a user's network with declared exponents,
:mod:`jaxlimit.models.scaled`) trains T full-batch steps (SGD or Adam, rate α n^{-c_l} on layer l) on
one fixed batch and the loss ½ mean (f − y)² after step T is recorded. A run whose loss is not finite
or exceeds its initial loss L_0 (it diverged) counts as L_0, so the curve is bounded.

Optimum per width and seed: with k the grid minimum of u = log L over log α, the vertex of the parabola
through (log α_j, u_j), j = k − 1, k, k + 1,

    log α* = log α_k − ½ [(Δ_-)² (u_{k+1} − u_k) + (Δ_+)² (u_{k−1} − u_k)] / [Δ_- (u_{k+1} − u_k) − Δ_+ (u_{k−1} − u_k)]

(Δ_- = log α_k − log α_{k−1}, Δ_+ = log α_{k+1} − log α_k), which lies within half a grid step either
side of α_k. A minimum at either end of the grid is not bracketed: that width is not resolved.

Drift: the mean of log α* over the S seeds at each width, with its standard error, fitted as
α*(n) ∝ n^s by the weighted log–log fit (:func:`~jaxlimit.stats.scaling.fit_power_law`; its interval is
inflated by the residual scatter). Each width's error adds in quadrature the grid's resolution
h/√12 (h the local log-grid step), because every seed shares the grid and the parabola's residual bias
is common to them. Transfer holds ("consistent") when the slope's interval, widened by ``tolerance``,
covers 0 (:func:`~jaxlimit.stats.verdict.slope_agreement`).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.models.mlp import MLP
from jaxlimit.models.parameterisation import Parameterisation, check_optimizer, check_representable, get_parameterisation
from jaxlimit.stats.scaling import PowerLawFit, fit_power_law
from jaxlimit.stats.verdict import NOT_RESOLVED, slope_agreement
from jaxlimit.streams import stream_key
from jaxlimit.training.coord_check import train_program


def default_alphas(optimizer: str) -> tuple[float, ...]:
    """The default log grid of base rates, a factor 2 apart: 2^-10 … 2^3 (SGD), 2^-14 … 2^2 (Adam)."""
    low, high = (-10, 3) if check_optimizer(optimizer) == "sgd" else (-14, 2)
    return tuple(2.0 ** k for k in range(low, high + 1))


def parabola_vertex(log_alpha: np.ndarray, u: np.ndarray) -> float:
    """log α* from the grid minimum of u and its two neighbours (module docstring); nan when the
    minimum lies at an end of the grid."""
    k = int(np.argmin(u))
    if k == 0 or k == len(u) - 1:
        return math.nan
    dm, dp = log_alpha[k] - log_alpha[k - 1], log_alpha[k + 1] - log_alpha[k]
    um, up = u[k - 1] - u[k], u[k + 1] - u[k]
    den = dm * up + dp * um
    if den <= 0:  # flat: the three points are equal
        return float(log_alpha[k])
    return float(log_alpha[k] - 0.5 * (dm**2 * up - dp**2 * um) / den)


@dataclasses.dataclass(frozen=True)
class Transfer:
    """The result of :func:`lr_transfer`.

    Attributes:
        parameterisation, optimizer, widths, alphas, steps, tolerance, level: the run.
        losses: (W, S, K, T + 1) training losses (widths, seeds, rates, steps 0…T), as trained.
        final: (W, S, K) the loss after T steps, diverged runs set to their initial loss.
        log_alpha_star: (W, S) natural log of the optimal base rate (nan: not bracketed by the grid).
        optimum, optimum_se: (W,) the geometric mean of α* over seeds and the standard error of its log
            (with the grid's resolution added).
        fit: α*(n) ∝ n^s over the resolved widths (None with fewer than two).
        verdict: {"transfer": "consistent" | "inconsistent" | "not resolved at this size"}.
    """

    parameterisation: Parameterisation
    optimizer: str
    widths: tuple[int, ...]
    alphas: tuple[float, ...]
    steps: int
    tolerance: float
    level: float
    losses: np.ndarray
    final: np.ndarray
    log_alpha_star: np.ndarray
    optimum: np.ndarray
    optimum_se: np.ndarray
    fit: PowerLawFit | None
    verdict: dict

    @property
    def resolved(self) -> np.ndarray:
        """Whether every seed's optimum at a width is bracketed by the grid."""
        return np.all(np.isfinite(self.log_alpha_star), axis=1)

    def sentence(self) -> str:
        if self.fit is None:
            return "the optimal learning rate is bracketed by the grid at fewer than two widths: no drift is fitted"
        lo, hi = self.fit.slope_ci
        return (f"the optimal learning rate drifts like n^{self.fit.slope:+.2f} [{lo:+.2f}, {hi:+.2f}] "
                f"({100 * self.level:g}% interval): transfer {self.verdict['transfer']}")


def _grid(alphas) -> tuple[float, ...]:
    try:
        alphas = tuple(sorted(float(a) for a in alphas))
    except (TypeError, ValueError):
        raise InputError(f"alphas must be a list of positive numbers, got {alphas!r}") from None
    if any(not (math.isfinite(a) and a > 0) for a in alphas):
        raise InputError(f"every learning rate must be positive and finite, got {list(alphas)}")
    if len(set(alphas)) < 3:
        raise InputError(f"a learning-rate sweep needs at least 3 distinct rates to locate an optimum, got {list(alphas)}")
    return alphas


def lr_transfer(parameterisation: str | Parameterisation = "mup", *, optimizer: str = "sgd",
                widths=(64, 128, 256, 512), alphas=None, steps: int = 20, seeds: int = 4, depth: int = 2,
                dim: int = 8, batch: int = 16, activation: str = "relu", seed: int = 0, target_scale: float = 1.0,
                tolerance: float = 0.1, level: float = 0.95, network=None, roles=None) -> Transfer:
    """Measure learning-rate transfer across widths (module docstring).

    Args:
        parameterisation: a preset name or a :class:`Parameterisation` (the MLP's, or the user network's roles').
        optimizer: "sgd" or "adam".
        widths: at least two distinct widths.
        alphas: the grid of base rates, at least 3 (default :func:`default_alphas`).
        steps: the training budget T.
        seeds: networks per width and rate (≥ 2, for the standard errors).
        depth, dim, batch, activation: the MLP (σ_w = 1, no biases) and the batch: inputs N(0, I_d),
            targets ``target_scale`` · sin(x_1).
        tolerance: how far the slope's interval may miss 0 and transfer still hold.
        level: the confidence level of the slope's interval.
        network, roles: a user's network family and its leaves' roles, as for
            :func:`~jaxlimit.training.coord_check.coord_check`.

    Raises InputError on one width, fewer than 3 rates, a non-positive rate, unknown presets or optimisers.
    """
    from jaxlimit.models.scaled import ScaledNetwork, declare

    p = get_parameterisation(parameterisation)
    check_optimizer(optimizer)
    widths = tuple(sorted(int(n) for n in widths))
    if len(set(widths)) < 2:
        raise InputError(f"a learning-rate transfer sweep fits a drift across widths: give at least two distinct "
                         f"widths, got {list(widths)}")
    if seeds < 2:
        raise InputError(f"seeds must be at least 2 (the optimum's error is over seeds), got {seeds}")
    if int(steps) != steps or steps < 1:
        raise InputError(f"steps must be a positive integer, got {steps}")
    alphas = default_alphas(optimizer) if alphas is None else _grid(alphas)
    if network is not None:
        if roles is None and not isinstance(network, ScaledNetwork):
            raise InputError("a user network needs its leaves' roles (roles={leaf path: role})")
        scaled = network if isinstance(network, ScaledNetwork) else declare(network, p, roles)
        p = scaled.parameterisation
        dim = scaled.at(widths[0]).dim
    check_representable(p, widths, optimizer)

    kx, _ = jax.random.split(stream_key(seed, "lr-transfer-data"))
    x = jax.random.normal(kx, (batch, dim), jnp.float32)
    y = target_scale * jnp.sin(x[:, 0])
    keys = jax.vmap(lambda i: jax.random.fold_in(stream_key(seed, "lr-transfer-members"), i))(jnp.arange(seeds))

    def record(zs, zs0, params, params0):
        return 0.5 * jnp.mean((zs[-1][:, 0] - y) ** 2)

    losses = []
    for n in widths:
        if network is not None:
            init, layers, rates = scaled.program(n, optimizer)
        else:
            model = MLP((n,) * depth, dim, activation=activation, W_std=1.0, b_std=0.0, parameterisation=p)
            init, layers, rates = model.init, model.preactivations, model.layer_learning_rates(optimizer)
        losses.append(train_program(init, layers, rates, x, y, keys, optimizer=optimizer, alphas=alphas,
                                    steps=steps, record=record))
    losses = np.stack(losses).astype(np.float64)  # (W, S, K, T + 1)
    return summarise(p, optimizer, widths, alphas, steps, tolerance, level, losses)


def summarise(p: Parameterisation, optimizer: str, widths, alphas, steps: int, tolerance: float, level: float,
              losses: np.ndarray) -> Transfer:
    """Optima, their drift and the verdict from the losses (W, S, K, T + 1) (module docstring)."""
    start, end = losses[..., 0], losses[..., -1]
    final = np.where(np.isfinite(end) & (end <= start), end, start)
    log_alpha = np.log(np.asarray(alphas, float))
    star = np.array([[parabola_vertex(log_alpha, np.log(final[w, s])) for s in range(final.shape[1])]
                     for w in range(final.shape[0])])
    seeds = star.shape[1]
    resolved = np.all(np.isfinite(star), axis=1)  # every seed's minimum bracketed by the grid
    mean = np.where(resolved, np.where(np.isfinite(star), star, 0.0).mean(axis=1), np.nan)
    se = np.full(len(widths), np.nan)
    for w in np.flatnonzero(resolved):
        k = int(np.argmin(np.abs(log_alpha - mean[w])))
        h = np.diff(log_alpha)[min(k, len(log_alpha) - 2)]
        se[w] = math.sqrt(np.var(star[w], ddof=1) / seeds + h**2 / 12)
    fit = None
    if resolved.sum() >= 2:
        n = np.asarray(widths, float)[resolved]
        optimum = np.exp(mean[resolved])
        fit = fit_power_law(n, optimum, y_err=optimum * se[resolved], level=level)
    verdict = {"transfer": NOT_RESOLVED if fit is None else slope_agreement(fit, 0.0, tolerance)}
    return Transfer(p, optimizer, tuple(widths), tuple(alphas), steps, tolerance, level, losses, final, star,
                    np.exp(mean), se, fit, verdict)


__all__ = ["Transfer", "default_alphas", "lr_transfer", "parabola_vertex", "summarise"]
