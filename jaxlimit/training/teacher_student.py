"""Training Tian's two-layer ReLU students: gradient descent and SGD (docs/teacher-student.md).

The closed forms (loss, gradient, Hessian), the population gradient flow and
its limit object :class:`~jaxlimit.limits.teacher_student.PopulationFlowLimit`
live in :mod:`jaxlimit.limits.teacher_student`; this module holds the
discrete runs the flow is compared with, vmapped over a batch of B
initialisations W0 of shape (B, K, d) and returned as
:class:`~jaxlimit.limits.teacher_student.StudentTrajectories` (re-exported
here):

* :func:`relu_gradient_descent`: W ← W − η ∇J(W) on the closed-form loss,
  saved at times η · steps;
* :func:`relu_sgd`: SGD on n fresh Gaussian samples per step.

Both refuse bad input as the closed forms do (one :class:`InputError` line
naming the argument).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxlimit.errors import InputError
from jaxlimit.limits.teacher_student import (
    StudentTrajectories, _all_finite, _check_batch, _population_grad,
)
from jaxlimit.models.relu_committee import relu_committee_sample_grad
from jaxlimit.validation import require_int, require_real


def _check_schedule(step, n_steps, save_every) -> tuple[float, int, int]:
    step = require_real(step, "step", high=None)
    n_steps = require_int(n_steps, "n_steps", high=2**31 - 1)
    save_every = require_int(save_every, "save_every", high=2**31 - 1)
    if n_steps % save_every:
        raise InputError(f"n_steps ({n_steps}) must be a positive multiple of save_every "
                         f"({save_every})")
    return step, n_steps, save_every


@functools.partial(jax.jit, static_argnames=("n_steps", "save_every", "n_samples"))
def _descend(keys, W0, W_star, step, n_steps, save_every, n_samples):
    def update(s, W, key):
        if n_samples is None:
            return W - step * _population_grad(W, W_star)
        x = jax.random.normal(jax.random.fold_in(key, s), (n_samples, W.shape[-1]), W.dtype)
        return W - step * relu_committee_sample_grad(W, W_star, x)

    def member(key, W):  # key is None for gradient descent
        def block(W, b):
            W = jax.lax.fori_loop(b * save_every, (b + 1) * save_every,
                                  lambda s, W: update(s, W, key), W)
            return W, W
        _, saved = jax.lax.scan(block, W, jnp.arange(n_steps // save_every))
        return jnp.concatenate([W[None], saved])

    ys = jax.vmap(member, in_axes=(None if keys is None else 0, 0))(keys, W0)
    return ys, _all_finite(ys)


def relu_gradient_descent(W0: jax.Array, W_star: jax.Array, step: float, n_steps: int,
                          save_every: int = 1) -> StudentTrajectories:
    """W ← W − η ∇J(W) on the closed-form loss from each start W0 (B, K, d).

    Saves every ``save_every`` steps, at times η · steps (so t matches the flow's).
    """
    W0, W_star = _check_batch(W0, W_star)
    step, n_steps, save_every = _check_schedule(step, n_steps, save_every)
    ys, ok = _descend(None, W0, W_star, step, n_steps, save_every, None)
    return StudentTrajectories(step * jnp.arange(0, n_steps + 1, save_every), ys, ok)


def relu_sgd(key: jax.Array, W0: jax.Array, W_star: jax.Array, step: float, n_steps: int,
             n_samples: int, save_every: int = 1) -> StudentTrajectories:
    """SGD W ← W − η ∇Ĵ_n(W), Ĵ_n the empirical loss on n fresh x ~ N(0, I_d) per step.

    Run b draws its samples from ``fold_in(key, b)`` (then ``fold_in(·, step)``),
    so a run's noise does not depend on the batch it is computed in.
    """
    W0, W_star = _check_batch(W0, W_star)
    step, n_steps, save_every = _check_schedule(step, n_steps, save_every)
    n_samples = require_int(n_samples, "n_samples", high=10**8)
    keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(W0.shape[0]))
    ys, ok = _descend(keys, W0, W_star, step, n_steps, save_every, int(n_samples))
    return StudentTrajectories(step * jnp.arange(0, n_steps + 1, save_every), ys, ok)


__all__ = ["StudentTrajectories", "relu_gradient_descent", "relu_sgd"]
