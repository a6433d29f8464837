"""The coordinate check as a library call: train an MLP a few steps at several widths, measure
coordinate sizes, fit their growth with the width and judge it (docs/parameterisations.md).

For each width n, S networks (seeds) with L hidden layers of width n, the given
parameterisation and optimiser are trained T steps on one fixed batch (mean
squared loss ½ mean (f − y)², full batch, learning rate η n^{-c_l} on layer l).
At every step t and for every layer l = 1, …, L + 1 (the last is the output
f = z^{L+1}) three root-mean-square sizes over the batch and the layer's
coordinates are recorded:

* ``activation``: RMS z^l_t, the pre-activation (what microsoft/mup's coord check hooks);
* ``change``: RMS (z^l_t − z^l_0), its change since initialisation (for the output, the output change);
* ``update``: RMS m_l (W^l_t − W^l_0) h^{l-1}_t, the part of the change the layer's own weights make.

Each is averaged over seeds and fitted as C n^s on log–log axes with the
weighted fit of :func:`~jaxlimit.stats.scaling.fit_power_law` (errors: the
standard error over seeds). A slope is consistent with a predicted exponent p
when its confidence interval, widened by ``tolerance`` for the finite-width
corrections a power law does not model, covers p.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlimit.errors import InputError
from jaxlimit.models.mlp import MLP
from jaxlimit.models.parameterisation import (
    Parameterisation, check_optimizer, check_representable, first_step_exponents, get_parameterisation,
)
from jaxlimit.stats.scaling import PowerLawFit, fit_valid_points
from jaxlimit.stats.verdict import CONSISTENT, INCONSISTENT, NOT_RESOLVED, combine, slope_agreement
from jaxlimit.streams import stream_key

QUANTITIES = ("activation", "change", "update")


def layer_names(depth: int) -> list[str]:
    """"input" (z^1), "hidden 2", …, "hidden L" and "output"."""
    return ["input", *[f"hidden {l}" for l in range(2, depth + 1)], "output"]


_mlp_layer_names = layer_names  # coord_check's argument layer_names (a user network's) shadows it


def _rms(v: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.square(v)))


def train_and_record(models: list[MLP], x: jax.Array, y: jax.Array, keys: jax.Array, *, optimizer: str, lr: float,
                     steps: int) -> np.ndarray:
    """Sizes (W, S, T + 1, L + 1, 3) of :data:`QUANTITIES` for W models of the same depth (one per width)
    and S networks each (member s of every model initialised by ``model.init(keys[s])``), trained ``steps``
    steps.

    SGD: W ← W − η s_l ∇_W L; Adam: W ← W − η s_l Adam(∇L)_W (optax.scale_by_adam, its defaults), with
    s_l = n_l^{-c_l} (:meth:`~jaxlimit.models.mlp.MLP.layer_learning_rates`). All widths run in one
    compiled call: each network is zero-padded to the largest width, its padded units masked to zero (a
    padded unit has no weights in or out, so no gradient and no Adam step), and the multipliers and rates
    enter as numbers per width.
    """
    depth = models[0].depth
    if any(m.depth != depth or m.dim != models[0].dim for m in models):
        raise InputError("the models of one coordinate check share their depth and input dimension")
    if any(m.b_std > 0 for m in models):
        raise InputError("the coordinate check takes networks without biases (b_std = 0)")
    big = max(models, key=lambda m: max(m.widths))
    shapes = [(n_out, n_in) for n_out, n_in in big._sizes()]

    def padded_init(m):  # (S, n_out, n_in) per layer, zero beyond the model's own widths
        params = jax.vmap(m.init)(keys)
        return tuple(jnp.pad(p.W, [(0, 0), (0, s[0] - p.W.shape[1]), (0, s[1] - p.W.shape[2])])
                     for p, s in zip(params, shapes))

    inits = [padded_init(m) for m in models]
    params0 = tuple(jnp.stack([init[i] for init in inits]) for i in range(depth + 1))  # (W, S, n_out, n_in)
    mult = jnp.asarray([[d.W for d in m.multipliers()] for m in models], jnp.float32)  # (W, L + 1)
    rate = jnp.asarray([[d.W for d in m.layer_learning_rates(optimizer)] for m in models], jnp.float32)
    size = jnp.asarray([[*m.widths, 1] for m in models], jnp.float32)  # units of z^1, …, z^{L+1}
    masks = [jnp.asarray([[1.0] * n + [0.0] * (s[0] - n) for n in sz], jnp.float32)
             for s, sz in zip(shapes, zip(*[[*m.widths, 1] for m in models]))]  # per layer (W, n_max)
    activation = models[0].activation
    adam = optax.scale_by_adam()

    def forward(params, m, mask_w):
        h, zs = x, []
        for i, w in enumerate(params):
            z = m[i] * (h @ w.T)
            zs.append(z)
            h = activation(z) * mask_w[i] if i < depth else z
        return zs

    def one(params0, m, r, n, mask_w):
        def loss(params):
            return 0.5 * jnp.mean((forward(params, m, mask_w)[-1][:, 0] - y) ** 2)

        zs0 = forward(params0, m, mask_w)

        def rms(v, i):
            return jnp.sqrt(jnp.sum(jnp.square(v)) / (n[i] * v.shape[0]))

        def record(params):
            zs = forward(params, m, mask_w)
            hs = [x, *[activation(z) * mask_w[i] for i, z in enumerate(zs[:-1])]]
            rows = []
            for i, (z, z0, w, w0, h) in enumerate(zip(zs, zs0, params, params0, hs)):
                upd = m[i] * (h @ (w - w0).T)
                rows.append(jnp.stack([rms(z, i), rms(z - z0, i), rms(upd, i)]))
            return jnp.stack(rows)

        state0 = adam.init(params0) if optimizer == "adam" else ()

        def step(carry, _):
            params, state = carry
            grads = jax.grad(loss)(params)
            if optimizer == "adam":
                grads, state = adam.update(grads, state, params)
            params = tuple(w - lr * r[i] * g for i, (w, g) in enumerate(zip(params, grads)))
            return (params, state), record(params)

        _, rows = jax.lax.scan(step, (params0, state0), None, length=steps)
        return jnp.concatenate([record(params0)[None], rows])

    per_seed = jax.vmap(one, in_axes=(0, None, None, None, None))
    per_width = jax.vmap(per_seed, in_axes=(0, 0, 0, 0, 0))
    return np.asarray(jax.jit(per_width)(params0, mult, rate, size, masks))


@dataclasses.dataclass(frozen=True)
class SlopeCheck:
    """One fitted slope and its verdicts.

    Attributes:
        layer, quantity, step: what was fitted (layer a name of :func:`layer_names`).
        fit: the power-law fit (None with fewer than two usable widths, e.g. a frozen layer's zeros).
        predicted: the exponent range the parameterisation predicts here (None: no prediction).
        mup: the slope against μP (:func:`mup_agreement`); parameterisation: against ``predicted``
            (:func:`range_agreement`), None where nothing is predicted.
    """

    layer: str
    quantity: str
    step: int
    fit: PowerLawFit | None
    predicted: tuple[float, float] | None
    mup: str
    parameterisation: str | None

    def as_dict(self) -> dict:
        f = self.fit
        return {"layer": self.layer, "quantity": self.quantity, "step": self.step,
                "slope": None if f is None else f.slope, "slope_ci": None if f is None else list(f.slope_ci),
                "predicted": None if self.predicted is None else list(self.predicted), "mup": self.mup, "parameterisation": self.parameterisation}


@dataclasses.dataclass(frozen=True)
class CoordCheck:
    """The result of :func:`coord_check`.

    Attributes:
        parameterisation, optimizer, widths, depth, steps, lr, tolerance, level: the run.
        sizes: (W, S, T + 1, L + 1, 3) sizes (widths, seeds, steps, layers, :data:`QUANTITIES`).
        checks: one :class:`SlopeCheck` per step t ≥ 1, layer and quantity.
        predicted: :func:`~jaxlimit.models.parameterisation.first_step_exponents`.
        stable: whether the parameterisation predicts no growing exponent (its exponents then hold at
            every step; otherwise at the first step only, after which a blown-up network follows no
            power law).
        verdict: {"mup": …, "parameterisation": …}.
        first_problem: the first layer (in forward order) whose change resolvedly grows or vanishes
            with n, as (layer, "blows up" or "freezes", SlopeCheck), or None.
        layers: the layers' names.
    """

    parameterisation: Parameterisation
    optimizer: str
    widths: tuple[int, ...]
    depth: int
    steps: int
    lr: float
    tolerance: float
    level: float
    sizes: np.ndarray
    checks: tuple[SlopeCheck, ...]
    predicted: dict
    stable: bool
    verdict: dict
    first_problem: tuple | None
    layers: tuple[str, ...] = ()

    def layer_names(self) -> list[str]:
        """The names of the checked layers (the MLP's :func:`layer_names`, or a user network's)."""
        return list(self.layers) or layer_names(self.depth)

    def slope(self, layer: str, quantity: str, step: int = 1) -> SlopeCheck:
        """The check of one layer, quantity and step."""
        for c in self.checks:
            if (c.layer, c.quantity, c.step) == (layer, quantity, step):
                return c
        raise InputError(f"no slope for layer {layer!r}, quantity {quantity!r}, step {step}")

    def problem_sentence(self) -> str:
        if self.first_problem is None:
            return "no layer's change resolvedly grows or vanishes with the width"
        layer, what, c = self.first_problem
        if c.fit is None:
            return f"the first layer that {what} is {layer}: it does not move at step {c.step}"
        lo, hi = c.fit.slope_ci
        return (f"the first layer that {what} is {layer}: its change at step {c.step} scales like "
                f"n^{c.fit.slope:.2f} [{lo:.2f}, {hi:.2f}]")


def predicted_range(predicted: dict, layer_index: int, quantity: str, stable: bool,
                    step: int) -> tuple[float, float] | None:
    """The exponent range predicted for one layer (0-based, L = output) and quantity at ``step``: every
    step of a stable parameterisation, the first step only otherwise (a blown-up network follows no
    power law after it); None where nothing finite is predicted (a frozen layer)."""
    if step > 1 and not stable:
        return None
    lo, hi = predicted[quantity][layer_index]
    return (float(lo), float(hi)) if math.isfinite(lo) and math.isfinite(hi) else None


def range_agreement(fit: PowerLawFit | None, predicted: tuple[float, float], tolerance: float) -> str:
    """``"consistent"`` when the slope's interval widened by ``tolerance`` meets the predicted range."""
    if fit is None or not all(math.isfinite(v) for v in fit.slope_ci):
        return NOT_RESOLVED
    lo, hi = fit.slope_ci
    return CONSISTENT if lo - tolerance <= predicted[1] and hi + tolerance >= predicted[0] else INCONSISTENT


def mup_agreement(fit: PowerLawFit | None, quantity: str, tolerance: float) -> str:
    """μP's claim: every change and update Θ(1) (slope consistent with 0) and no activation growing
    (its slope's interval reaches down to 0 or below; μP's output starts at n^{-1/2} and may vanish)."""
    if quantity != "activation":
        return slope_agreement(fit, 0.0, tolerance)
    if fit is None or not all(math.isfinite(v) for v in fit.slope_ci):
        return NOT_RESOLVED
    return CONSISTENT if fit.slope_ci[0] - tolerance <= 0 else INCONSISTENT


def train_program(init, layers, rates, x: jax.Array, y: jax.Array, keys: jax.Array, *, optimizer: str, alphas,
                  steps: int, record) -> np.ndarray:
    """Train S networks (``init(keys[s])``) at each base rate η in ``alphas`` for ``steps`` full-batch
    steps of the loss ½ mean (f − y)², f = ``layers(params, x)[-1]``, and return
    ``record(zs, zs0, params, params0)`` at steps 0…T, stacked as (S, A, T + 1, …).

    SGD: θ_ℓ ← θ_ℓ − η r_ℓ ∇_ℓ L; Adam: θ_ℓ ← θ_ℓ − η r_ℓ Adam(∇L)_ℓ (optax.scale_by_adam, its
    defaults), r_ℓ the leaf's entry of ``rates`` (n^{-c_ℓ}). One compiled call for all seeds and rates;
    a diverging network gives non-finite records, left to the caller.
    """
    adam = optax.scale_by_adam() if check_optimizer(optimizer) == "adam" else None

    def loss(params):
        return 0.5 * jnp.mean((layers(params, x)[-1][:, 0] - y) ** 2)

    def one(key, lr):
        params0 = init(key)
        zs0 = layers(params0, x)

        def rec(params):
            return record(layers(params, x), zs0, params, params0)

        def step(carry, _):
            params, state = carry
            grads = jax.grad(loss)(params)
            if adam is not None:
                grads, state = adam.update(grads, state, params)
            params = jax.tree_util.tree_map(lambda w, g, r: w - lr * r * g, params, grads, rates)
            return (params, state), rec(params)

        state0 = adam.init(params0) if adam is not None else ()
        _, rows = jax.lax.scan(step, (params0, state0), None, length=steps)
        return jnp.concatenate([rec(params0)[None], rows])

    run = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
    return np.asarray(run(keys, jnp.asarray(alphas, jnp.float32)))


def _record_sizes(zs, zs0, params, params0):
    """Per layer (activation, change, update) RMS; the update is not separable in a user's network (nan)."""
    return jnp.stack([jnp.stack([_rms(z), _rms(z - z0), jnp.nan]) for z, z0 in zip(zs, zs0)])


def _problem(seed: int, seeds: int, dim: int, batch: int, target_scale: float):
    kx, _ = jax.random.split(stream_key(seed, "coord-check-data"))
    x = jax.random.normal(kx, (batch, dim), jnp.float32)
    y = target_scale * jnp.sin(x[:, 0])
    keys = jax.vmap(lambda i: jax.random.fold_in(stream_key(seed, "coord-check-members"), i))(jnp.arange(seeds))
    return x, y, keys


def coord_check(parameterisation: str | Parameterisation = "mup", *, optimizer: str = "sgd",
                widths=(64, 128, 256, 512, 1024), depth: int = 2, steps: int = 3, lr: float | None = None,
                seeds: int = 4, dim: int = 8, batch: int = 16, activation: str = "relu", seed: int = 0,
                target_scale: float = 5.0, tolerance: float = 0.1, level: float = 0.95,
                network=None, roles=None, layer_names=None) -> CoordCheck:
    """Run the coordinate check of an MLP with ``depth`` hidden layers, or of a user's network (module
    docstring).

    Args:
        parameterisation: a preset name or a :class:`Parameterisation`: the MLP's, or the exponents of
            the user network's roles.
        optimizer: "sgd" or "adam".
        widths: at least two distinct widths (powers of two, conventionally).
        lr: the base rate η (default 0.1 for SGD, 0.01 for Adam).
        seeds: networks per width (≥ 2, for the standard errors).
        dim, batch: the input dimension and the fixed batch's size; inputs N(0, I_d), targets
            ``target_scale`` · sin(x_1): large against the random initial output, so the first step's
            error f_0 − y, which sets the size of an SGD step, varies little between networks.
        tolerance: how far a slope's interval may miss a predicted exponent (finite-width corrections).
        level: the confidence level of each slope's interval.
        network: a user's network family ``network(n) -> UserNetwork`` in width-free units (or a
            :class:`~jaxlimit.models.scaled.ScaledNetwork`), trained with the declared exponents
            (:mod:`jaxlimit.models.scaled`); ``depth`` and ``activation`` are then the network's own.
            Its layers are the outputs it returns (z^1, …, z^L, f); the "update" quantity is not
            recorded (a user's layer is not separable into its own weights' part).
        roles: each leaf's role (with ``network``): {leaf path: role} or roles(path, leaf) -> role.
        layer_names: names of the user network's layer outputs (default "layer 1", …, "output").

    Raises InputError on one width, unknown presets or optimisers, and exponents that overflow float32.
    """
    from jaxlimit.models.scaled import ScaledNetwork, declare

    p = get_parameterisation(parameterisation)
    check_optimizer(optimizer)
    widths = tuple(sorted(int(n) for n in widths))
    if len(set(widths)) < 2:
        raise InputError(f"a coordinate check fits slopes across widths: give at least two distinct widths, "
                         f"got {list(widths)}")
    if seeds < 2:
        raise InputError(f"seeds must be at least 2 (the slopes' errors are over seeds), got {seeds}")
    check_representable(p, widths, optimizer)
    lr = (0.1 if optimizer == "sgd" else 0.01) if lr is None else float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be positive and finite, got {lr}")
    if network is not None:
        if roles is None and not isinstance(network, ScaledNetwork):
            raise InputError("a user network needs its leaves' roles (roles={leaf path: role})")
        scaled = network if isinstance(network, ScaledNetwork) else declare(network, p, roles, layer_names)
        p = scaled.parameterisation
        check_representable(p, widths, optimizer)
        names = scaled.names(widths[0])
        depth = len(names) - 1
        dim = scaled.at(widths[0]).dim
        x, y, keys = _problem(seed, seeds, dim, batch, target_scale)
        sizes = []
        for n in widths:
            init, layers, rates = scaled.program(n, optimizer)
            sizes.append(train_program(init, layers, rates, x, y, keys, optimizer=optimizer, alphas=[lr],
                                       steps=steps, record=_record_sizes)[:, 0])
        sizes = np.stack(sizes)
        # the declared roles' exponents predict the layers' growth when the network is a chain of layers
        predicted = first_step_exponents(p, depth, optimizer) if depth >= 1 else None
    else:
        x, y, keys = _problem(seed, seeds, dim, batch, target_scale)
        models = [MLP((n,) * depth, dim, activation=activation, W_std=1.0, b_std=0.0, parameterisation=p)
                  for n in widths]
        sizes = train_and_record(models, x, y, keys, optimizer=optimizer, lr=lr, steps=steps)
        predicted = first_step_exponents(p, depth, optimizer, activation_nonnegative=activation == "relu")
        names = _mlp_layer_names(depth)
    return judge(p, optimizer, widths, depth, steps, lr, tolerance, level, sizes, predicted, names)


def judge(p: Parameterisation, optimizer: str, widths, depth: int, steps: int, lr: float, tolerance: float,
          level: float, sizes: np.ndarray, predicted: dict | None, names: list[str]) -> CoordCheck:
    """Fit every recorded (not-nan) size's slope over the widths and give the verdicts (module docstring)."""
    stable = predicted is not None and all(
        hi <= 0 for q in QUANTITIES for _, hi in predicted[q] if math.isfinite(hi))
    checks = []
    seeds = sizes.shape[1]
    mean = sizes.mean(axis=1)
    se = sizes.std(axis=1, ddof=1) / math.sqrt(seeds)
    for t in range(1, steps + 1):
        for l, name in enumerate(names):
            for q, quantity in enumerate(QUANTITIES):
                if np.all(np.isnan(sizes[:, :, t, l, q])):
                    continue  # not recorded (a user network's "update")
                fit = fit_valid_points(widths, mean[:, t, l, q], y_err=np.maximum(se[:, t, l, q], 1e-30),
                                       level=level)
                e = None if predicted is None else predicted_range(predicted, l, quantity, stable, t)
                checks.append(SlopeCheck(
                    name, quantity, t, fit, e, mup_agreement(fit, quantity, tolerance),
                    None if e is None else range_agreement(fit, e, tolerance)))
    words_mup = [c.mup for c in checks]
    words_p = [c.parameterisation for c in checks if c.parameterisation is not None]
    verdict = {"mup": CONSISTENT if all(w == CONSISTENT for w in words_mup) else INCONSISTENT,
               "parameterisation": combine(words_p) if words_p else NOT_RESOLVED}
    if verdict["parameterisation"] == NOT_RESOLVED and predicted is not None:
        verdict["parameterisation"] = INCONSISTENT  # an unfittable predicted slope (a frozen layer) is no agreement
    first = None
    for t in range(1, steps + 1):
        for name in names:
            c = next(c for c in checks if (c.layer, c.quantity, c.step) == (name, "change", t))
            if c.fit is None or not all(math.isfinite(v) for v in c.fit.slope_ci):
                if t == 1 and c.fit is None:
                    first = (name, "freezes", c)
                    break
                continue
            lo, hi = c.fit.slope_ci
            if lo - tolerance > 0:
                first = (name, "blows up", c)
            elif hi + tolerance < 0:
                first = (name, "freezes", c)
            if first:
                break
        if first:
            break
    return CoordCheck(p, optimizer, widths, depth, steps, lr, tolerance, level, sizes, tuple(checks), predicted,
                      stable, verdict, first, tuple(names))


__all__ = ["CoordCheck", "QUANTITIES", "SlopeCheck", "coord_check", "judge", "layer_names", "mup_agreement",
           "predicted_range", "range_agreement", "train_and_record", "train_program"]
