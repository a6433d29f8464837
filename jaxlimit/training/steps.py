"""One training step as a pure function: sample a batch, differentiate, update.

Every method uses the same clock and the same width scaling: the gradient of
the batch-mean loss is multiplied leaf by leaf by ``model.learning_rates()``
(α N^{-(2-2γ)} for the two-layer family) and by the base step α.

* ``"online"``: one training sample per step, drawn uniformly: exactly the
  SGD of Sirignano & Spiliopoulos (docs/xavier.md#model-and-scaling).
* ``"minibatch"``: ``batch_size`` samples per step, drawn uniformly with
  replacement; the same drift as online SGD with 1/B of its noise.
* ``"fullbatch"``: gradient descent on the mean loss over all M points, the
  Euler scheme of the limit gradient flow.
* ``"optax"``: any ``optax.GradientTransformation`` fed the width-scaled
  full-batch or mini-batch gradient; ``optax.sgd(α)`` reproduces the built-in
  method.

The sample used at step k is a function of (member key, k) alone, so a run
split into segments or chunks draws exactly the same stream. On a finite
:class:`~jaxlimit.data.Dataset` it is the rows ``randint(fold_in(data_key, k))``;
on a distribution (:class:`~jaxlimit.data.OnlineData`) it is a fresh draw
``data.sample(fold_in(data_key, k), rows)``, where full-batch descent has no
meaning.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from jaxlimit.data import Dataset, OnlineData
from jaxlimit.errors import InputError
from jaxlimit.losses import Loss, get_loss
from jaxlimit.models.base import Model
from jaxlimit.names import METHODS
from jaxlimit.validation import require_int, require_real



class Trainer(eqx.Module):
    """How the ensemble is trained.

    ``Trainer()`` is **online SGD** (one random training sample per step), the SGD
    of the two-layer papers; the kernel limits (``mlp_limit``, Monte Carlo
    kernels, the NTK regime) describe the gradient flow, whose small-step limit
    is ``Trainer(method="fullbatch")``. The method is recorded in every result's
    ``config["trainer"]``; :func:`jaxlimit.training.guards.training_method_mismatch`
    names a mismatch with a limit.

    Attributes:
        alpha: the base step α > 0 (multiplied by the model's width scaling).
        method: one of :data:`METHODS`; ``"online"`` by default (see above).
        batch_size: samples per step for ``"minibatch"`` (and ``"optax"``;
            0 there means full batch).
        loss: the per-sample loss.
        optimizer: the optax transformation for ``method="optax"``.
    """

    # static: hashed by jit as part of the training step (and of the engine's cache key)
    alpha: float = eqx.field(static=True, default=1.0)
    method: str = eqx.field(static=True, default="online")
    batch_size: int = eqx.field(static=True, default=1)
    loss: Loss = eqx.field(static=True, default_factory=lambda: get_loss("squared"))
    optimizer: Any = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.method not in METHODS:
            raise InputError(f"unknown training method {self.method!r}; choose {', '.join(METHODS)}")
        require_real(self.alpha, "alpha")
        require_int(self.batch_size, "batch_size", low=0 if self.method == "optax" else 1)
        if self.method == "optax" and not isinstance(self.optimizer, optax.GradientTransformation):
            raise InputError("method 'optax' needs an optax.GradientTransformation as optimizer")
        if self.method != "optax" and self.optimizer is not None:
            raise InputError("an optax optimizer is only used with method='optax'")

    def init_state(self, params):
        """The optimiser state of fresh parameters (empty for the built-in methods)."""
        return self.optimizer.init(params) if self.method == "optax" else ()

    def rows_per_step(self, n_train: int) -> int:
        if self.method == "online":
            return 1
        if self.method == "fullbatch" or (self.method == "optax" and self.batch_size == 0):
            return n_train
        return self.batch_size

    def sample_rows(self, data_key, k, n_train: int):
        """The training rows of step k: ``randint(fold_in(data_key, k))``, a function of
        (member, k) alone, so chunks, segments and programs all draw the same ones."""
        return jax.random.randint(jax.random.fold_in(data_key, k), (self.rows_per_step(n_train),), 0, n_train,
                                  dtype=jnp.int32)

    def __repr__(self) -> str:  # one line from describe(), not the whole pytree
        from jaxlimit.display import described_repr

        return described_repr(self)

    def describe(self) -> dict:
        out = {"method": self.method, "alpha": self.alpha, "loss": self.loss.name}
        if self.method in ("minibatch", "optax"):
            out["batch_size"] = self.batch_size
        return out


def make_step(model: Model, data: Dataset | OnlineData, trainer: Trainer) -> tuple[Callable, Callable]:
    """Build the pure pair ``(init_state, step)`` for one network.

    ``init_state(params) -> opt_state`` and
    ``step(params, opt_state, data_key, k) -> (params, opt_state)`` where ``k``
    is the global step index (a traced integer). On :class:`OnlineData` the batch of
    step k is ``data.sample(fold_in(data_key, k), rows)`` in the evaluation sample's dtype.
    """
    m = data.n_train
    rows = trainer.rows_per_step(m)
    online = isinstance(data, OnlineData)
    full = rows == m and trainer.method != "minibatch" and trainer.method != "online"
    lr = model.learning_rates()

    def batch_loss(params, x, y):
        return jnp.mean(trainer.loss(model.apply(params, x), y))

    def scaled_grad(params, data_key, k):
        if online:
            x, y = data.sample(jax.random.fold_in(data_key, k), rows)
            x, y = x.astype(data.x_eval.dtype), y.astype(data.x_eval.dtype)
        elif full:
            x, y = data.x_train, data.y_train
        else:
            idx = trainer.sample_rows(data_key, k, m)
            x, y = data.x_train[idx], data.y_train[idx]
        grads = jax.grad(batch_loss)(params, x, y)
        return jax.tree_util.tree_map(lambda g, s: s * g, grads, lr)

    if trainer.method == "optax":
        opt = trainer.optimizer

        def step(params, opt_state, data_key, k):
            g = scaled_grad(params, data_key, k)
            updates, opt_state = opt.update(g, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        return trainer.init_state, step

    alpha = trainer.alpha

    def step(params, opt_state, data_key, k):
        g = scaled_grad(params, data_key, k)
        return jax.tree_util.tree_map(lambda p, gi: p - alpha * gi, params, g), opt_state

    return trainer.init_state, step
