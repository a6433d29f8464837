"""The lazy (kernel-regime) limit of any network the engine trains: ``lazy_limit(model, data, trainer)``
(docs/limits.md#the-lazy-limit-of-any-network).

One constructor for the Gaussian kernel-flow limit, whatever the model:

* :class:`~jaxlimit.models.MLP` (NT's "ntk" parameterisation): the analytic NNGP and NTK
  (:func:`~jaxlimit.limits.mlp.mlp_limit` with the model's depth, activation, σ_w, σ_b and η = α);
* :class:`~jaxlimit.models.TwoLayer` with γ = 1/2: the Xavier limit
  (:func:`~jaxlimit.limits.xavier.xavier_limit`);
* any other model (a :class:`~jaxlimit.models.UserNetwork`, ``from_equinox``): Monte Carlo kernels
  from ``n_members`` independent initialisations of the model itself
  (:func:`~jaxlimit.limits.empirical.monte_carlo_kernels`, with the engine's per-leaf
  learning-rate multipliers, so Θ̂ is the kernel the engine's descent follows), whose standard
  errors become the limit's ``kernel_error``.

The flow is df/dt = −(α/M) Θ (f − y) on the training points (full-batch gradient flow; the
Xavier limit also describes SGD). The model is recorded in the limit's
:attr:`~jaxlimit.limits.Limit.assumptions`, so :func:`~jaxlimit.compare` refuses an ensemble
of another network.
"""

from __future__ import annotations

from typing import Any

from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.limits.empirical import monte_carlo_kernels
from jaxlimit.limits.kernel_limit import KernelLimit
from jaxlimit.limits.mlp import mlp_limit
from jaxlimit.limits.xavier import xavier_limit
from jaxlimit.models.mlp import MLP
from jaxlimit.models.two_layer import TwoLayer
from jaxlimit.streams import stream_key
from jaxlimit.training.steps import Trainer
from jaxlimit.validation import require_int

DEFAULT_KERNEL_MEMBERS = 1024
"""Networks behind a Monte Carlo kernel limit by default. The kernels' own noise is part of every
comparison made with them: use several times more kernel networks than ensemble members, or the
kernels' error raises the false-alarm rate of the verdict."""


def lazy_limit(model: Any, data: Dataset, trainer: Trainer | None = None, *,
               n_members: int = DEFAULT_KERNEL_MEMBERS, seed: int = 0) -> KernelLimit:
    """The kernel-regime limit of ``model`` trained by ``trainer`` on ``data`` (module docstring).

    Args:
        model: the networks of the ensemble (any model the engine trains).
        data: their data; the limit covers the training points then the probe points.
        trainer: the training (full batch by default); its α is the flow's learning rate.
        n_members: networks for Monte Carlo kernels (models without analytic kernels only).
        seed: the Monte Carlo kernels' stream (``stream_key(seed, "kernels")``), distinct
            from any ensemble's members.
    """
    trainer = Trainer(method="fullbatch") if trainer is None else trainer
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a jaxlimit Dataset, got {type(data).__name__}")
    if not isinstance(trainer, Trainer):
        raise InputError(f"trainer must be a jaxlimit Trainer, got {type(trainer).__name__}")
    if trainer.loss.name != "squared":
        raise InputError(f"the lazy limit is the flow of the squared loss, got loss {trainer.loss.name!r}")
    if trainer.method == "optax":
        raise InputError("the lazy limit describes gradient descent, not an optax optimizer")
    dim = getattr(model, "dim", getattr(model, "input_dim", None))
    if dim is not None and data.dim != dim:
        raise InputError(f"data has input dimension {data.dim} but the model expects {dim}")
    if isinstance(model, MLP):
        if model.describe().get("parameterisation") != "ntk":
            raise InputError(f"the lazy limit's analytic kernels describe the 'ntk' parameterisation, got "
                             f"{model.describe().get('parameterisation')!r} (see docs/parameterisations.md)")
        return mlp_limit(data.x_train, data.y_train, data.x_probe, depth=model.depth, activation=model.activation,
                         W_std=model.W_std, b_std=model.b_std, learning_rate=trainer.alpha)
    if isinstance(model, TwoLayer):
        if model.gamma != 0.5:
            raise InputError(f"a two-layer network with γ = {model.gamma:g} has no lazy limit at this clock; "
                             "use mean_field_limit for γ = 1")
        return xavier_limit(model, data, trainer)
    for name in ("init", "apply", "learning_rates", "describe"):
        if not callable(getattr(model, name, None)):
            raise InputError(f"{type(model).__name__} is not a jaxlimit model (no {name}()); wrap an equinox "
                             "module with jaxlimit.from_equinox or (init, apply) with jaxlimit.UserNetwork")
    n_members = require_int(n_members, "n_members", low=2)
    kernels = monte_carlo_kernels(model, stream_key(seed, "kernels"), data.x_all, n_members)
    limit = kernels.limit(data.y_train, trainer.alpha)
    described = {k: v for k, v in model.describe().items() if k in ("model", "name", "dim")}
    return KernelLimit(limit.nngp, limit.ntk, limit.y_train, limit.learning_rate, kernel_error=limit.kernel_error,
                       kernel_method=f"monte-carlo ({n_members} networks)", describes={"model": described})


__all__ = ["DEFAULT_KERNEL_MEMBERS", "lazy_limit"]
