"""One member's training as three pure functions: the engine vmaps them.

A :class:`MemberProgram` says how one network starts, advances and is
recorded, with no notion of ensembles, blocks or devices:

* ``init(key, data) -> state``: draw the initial parameters and optimiser state;
* ``advance(state, key, k0, k1, data) -> state``: training steps k0 … k1 − 1,
  where step k uses the sample stream ``fold_in(data_key, k)`` (so any split
  of the steps into segments gives the same numbers);
* ``record(state, state0, data) -> Record``: outputs on the training then
  probe points, the training loss and the observables.

The data are an argument, not a constant of the program, so that compiled
code is reused by every run of the same model and trainer, whatever the data
values (:class:`~jaxlimit.training.ensemble.run_ensemble` caches it).

:func:`generic_program` works for any model through ``jax.grad``; faster
hand-derived programs for particular models implement the same three
functions and must agree with it to float rounding.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from jaxlimit.data import Dataset
from jaxlimit.models.base import Model, PyTree
from jaxlimit.training.steps import Trainer, make_step

Observable = Callable[[PyTree, PyTree, Dataset], jax.Array]
"""``fn(params, initial_params, data) -> array``, recorded at every saved time."""


class Record(NamedTuple):
    """One member's record at one time: outputs (P,), loss (), observables {name: (...)}."""

    outputs: jax.Array
    loss: jax.Array
    observables: dict


class MemberProgram(NamedTuple):
    init: Callable[[jax.Array, Dataset], Any]
    advance: Callable[[Any, jax.Array, Any, Any, Dataset], Any]
    record: Callable[[Any, Any, Dataset], Record]


def _data_key(key: jax.Array) -> jax.Array:
    return jax.random.split(key)[1]


def generic_program(model: Model, trainer: Trainer, observables: Mapping[str, Observable], dtype) -> MemberProgram:
    """The program for any model: ``jax.grad`` of the batch loss, scaled per leaf.

    The member key is split in two: the first half draws the initial
    parameters, the second is the root of the sample stream. ``data`` must
    already hold ``dtype`` arrays.
    """
    def init(key, data):
        params = model.init(jax.random.split(key)[0], dtype)
        return params, trainer.init_state(params)

    def advance(state, key, k0, k1, data):
        _, step = make_step(model, data, trainer)
        data_key = _data_key(key)
        return jax.lax.fori_loop(k0, k1, lambda k, s: step(*s, data_key, k), state)

    def record(state, state0, data):
        params, params0 = state[0], state0[0]
        out = model.apply(params, data.x_all)
        loss = jnp.mean(trainer.loss(out[: data.n_train], data.y_train))
        return Record(out, loss, {k: fn(params, params0, data) for k, fn in observables.items()})

    return MemberProgram(init, advance, record)


__all__ = ["MemberProgram", "Observable", "Record", "generic_program"]
