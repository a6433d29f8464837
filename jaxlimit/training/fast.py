"""Hand-derived training programs for the two-layer family.

For g(x) = s Σ_i c_i σ(w_i·x) with s = N^{-γ}, base step α and width factor
λ = N^{-(2−2γ)}, one step of SGD (or gradient descent) on the batch B of
rows k ∈ B with the squared loss ½ (y − g)² is, with u_ki = w_i·x_k,

    r_k = y_k − s Σ_i c_i σ(u_ki)                     (residual; Huber clips it to [−δ, δ])
    g_k = α λ s r_k / |B|
    c_i ← c_i + Σ_k g_k σ(u_ki)
    w_i ← w_i + Σ_k g_k c_i σ′(u_ki) x_k              (old c_i on the right)

exactly the update the generic program gets from ``jax.grad``, written out so
that XLA compiles one fused step without the autodiff copies. Two
representations of the state:

* **weights**: c (N,) and wᵀ (d, N), so that the matrix–vector product and
  the rank-|B| update run along contiguous N;
* **pre-activations** ("data space"): c and Z = X_all wᵀ (P, N), the
  pre-activations on all P training and probe points. Since every update of
  w_i is a combination of training inputs, Z evolves by
      Z ← Z + G[:, B] (g ∘ σ′(U) ∘ c),   G = X_all X_trainᵀ  (P × M),
  and the input dimension d disappears from the step: it is cheaper whenever
  d > P. The weights are not kept, so this representation is used only when
  no observable needs them.

Both give the generic program's numbers to float rounding (tested), and both
draw the same sample stream ``randint(fold_in(data_key, k))``, for
``SAMPLE_BLOCK`` steps at a time outside the step loop (the rows of step k are
still a function of (member key, k) alone, so segments and chunks cannot change
them).
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

from jaxlimit.data import Dataset
from jaxlimit.models.two_layer import TwoLayer, TwoLayerParams
from jaxlimit.training.program import MemberProgram, Observable, Record, _data_key
from jaxlimit.training.steps import Trainer

REPRESENTATIONS = ("weights", "pre-activations")
SAMPLE_BLOCK = 64


def fast_program_kind(model, data: Dataset, trainer: Trainer, observables: Mapping[str, Observable]) -> str | None:
    """Which hand-derived program applies, or None (the generic one is used)."""
    if not isinstance(model, TwoLayer) or trainer.method == "optax":
        return None
    if trainer.loss.residual is None:
        return None
    if not observables and model.dim > data.n_train + data.n_probe:
        return "pre-activations"
    return "weights"


def two_layer_program(model: TwoLayer, trainer: Trainer, observables: Mapping[str, Observable], dtype,
                      kind: str) -> MemberProgram:
    """The hand-derived program of the given ``kind`` (see :func:`fast_program_kind`)."""
    full = trainer.method == "fullbatch"
    s = model.width ** (-model.gamma)
    sigma, dsigma = model.activation.fn, model.activation.derivative
    clip = trainer.loss.residual

    def coefficients(c, u, y):
        """σ(U), σ′(U) and g_k for pre-activations U (|B|, N) at targets y (|B|,)."""
        a = sigma(u)
        rate = trainer.alpha * model.width ** (-(2.0 - 2.0 * model.gamma)) * s / u.shape[0]
        g = rate * clip(y - s * (a @ c))
        return a, dsigma(u), g

    if kind == "weights":
        def init(key, data):
            p = model.init(jax.random.split(key)[0], dtype)
            return p.c, p.w.T

        def step(idx, state, data, gram):
            c, wt = state
            xb = data.x_train[idx]
            a, da, g = coefficients(c, xb @ wt, data.y_train[idx])
            return c + g @ a, wt + xb.T @ (g[:, None] * da * c[None, :])

        def outputs(state, data):
            c, wt = state
            return s * (sigma(data.x_all @ wt) @ c)

        def params(state):
            return TwoLayerParams(state[0], state[1].T)
    elif kind == "pre-activations":
        def init(key, data):
            p = model.init(jax.random.split(key)[0], dtype)
            return p.c, data.x_all @ p.w.T

        def step(idx, state, data, gram):
            c, z = state
            a, da, g = coefficients(c, z[idx], data.y_train[idx])
            return c + g @ a, z + gram[:, idx] @ (g[:, None] * da * c[None, :])

        def outputs(state, data):
            c, z = state
            return s * (sigma(z) @ c)

        params = None
    else:
        raise ValueError(f"unknown representation {kind!r}")

    def advance(state, key, k0, k1, data):
        gram = data.x_all @ data.x_train.T if kind == "pre-activations" else None  # (P, M)
        if full:
            every = jnp.arange(data.n_train, dtype=jnp.int32)
            return jax.lax.fori_loop(k0, k1, lambda k, st: step(every, st, data, gram), state)
        data_key = _data_key(key)

        def block(j, st):
            # The rows of SAMPLE_BLOCK steps drawn at once: the same values as one draw per
            # step (each is randint(fold_in(data_key, k))), without a draw inside the step loop.
            start = k0 + j * SAMPLE_BLOCK
            ks = start + jnp.arange(SAMPLE_BLOCK, dtype=jnp.int32)
            rows = jax.vmap(lambda k: trainer.sample_rows(data_key, k, data.n_train))(ks)  # (SAMPLE_BLOCK, |B|)
            stop = jnp.minimum(start + SAMPLE_BLOCK, k1)
            return jax.lax.fori_loop(start, stop, lambda k, s_: step(rows[k - start], s_, data, gram), st)

        n_blocks = (k1 - k0 + SAMPLE_BLOCK - 1) // SAMPLE_BLOCK
        return jax.lax.fori_loop(0, n_blocks, block, state)

    def record(state, state0, data):
        out = outputs(state, data)
        loss = jnp.mean(trainer.loss(out[: data.n_train], data.y_train))
        extra = {}
        if observables:
            p, p0 = params(state), params(state0)
            extra = {name: fn(p, p0, data) for name, fn in observables.items()}
        return Record(out, loss, extra)

    return MemberProgram(init, advance, record)


__all__ = ["REPRESENTATIONS", "fast_program_kind", "two_layer_program"]
