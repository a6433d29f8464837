"""Guards around a run: an unstable step caught before training, divergence and a training
method the limit does not assume named at once.

* :func:`step_stability`: full-batch gradient descent on the squared loss
  moves the training outputs, to first order, by
  f − y ← (I − (α/M) Θ_lr)(f − y), where Θ_lr = Σ_ℓ lr_ℓ ∂f/∂θ_ℓ ∂f/∂θ_ℓᵀ is
  the kernel of the engine's per-leaf rates lr_ℓ = ``model.learning_rates()``
  (dt · w_ℓ for a model with a ``time_step``; :mod:`jaxlimit.limits.empirical`).
  The step is stable near initialisation only if α λ_max(Θ_lr)/M < 2; above
  it the error along the top eigenvector grows by |1 − α λ_max/M| > 1 per
  step. Online and minibatch SGD have the same bound on the rows of one step
  (:func:`step_stability`). ``run_ensemble`` estimates the rate from the
  empirical kernels of a few members at initialisation and warns
  (:class:`UnstableStepWarning`) or refuses before training.
* :class:`DivergenceWarning`: members diverged; said by ``run_ensemble`` at
  the first saved time where a member has diverged (training goes on), and
  again when the run ends, with the count and the likely cause.
* :func:`training_method_mismatch`: the one-line reason why an ensemble
  trained by one method (``Trainer()`` defaults to online SGD) is not what a
  limit of another method (the gradient-flow limits assume full-batch
  descent) describes, or None; :class:`TrainingMethodWarning` is the warning
  to raise with it.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError

STABILITY_BOUND = 2.0
"""Full-batch descent is stable near initialisation while α λ_max(Θ_lr)/M stays below this."""
STEP_CHECK_MEMBERS = 4
"""Members whose empirical kernel at initialisation estimates λ_max."""
STEP_CHECK_BYTES = 2**29
"""The check is skipped (and says so) when the members' Jacobians would need more than this."""
STEP_CHECKS = ("warn", "error", "off")


class UnstableStepWarning(UserWarning):
    """The training step is above the stability bound of full-batch descent at initialisation."""


class DivergenceWarning(UserWarning):
    """Members of an ensemble diverged (their outputs became non-finite or exceeded the threshold)."""


class TrainingMethodWarning(UserWarning):
    """The ensemble was trained by another method than the one the limit describes."""


_METHOD_WORDS = {"online": "online SGD (one random sample per step; Trainer()'s default)",
                 "minibatch": "minibatch SGD", "fullbatch": "full-batch gradient descent",
                 "optax": "an optax optimizer", "gradient-flow": "full-batch gradient descent (gradient flow)"}


def training_method_mismatch(trainer_method: str, limit_method: str | None) -> str | None:
    """Why an ensemble trained by ``trainer_method`` is not what a limit of ``limit_method`` describes.

    ``limit_method`` is a :class:`~jaxlimit.training.Trainer` method name
    (``"fullbatch"`` for every gradient-flow limit, also spelled
    ``"gradient-flow"``) or None (the limit holds for any method). Returns one
    line naming both methods and the fix, or None when they agree.
    """
    if limit_method is None:
        return None
    want = "fullbatch" if limit_method == "gradient-flow" else limit_method
    if trainer_method == want:
        return None
    words = _METHOD_WORDS.get(trainer_method, repr(trainer_method))
    assumed = _METHOD_WORDS.get(limit_method, repr(limit_method))
    noise = (" whose sampling noise adds a spread the limit leaves out" if trainer_method in ("online", "minibatch")
             and want == "fullbatch" else "")
    return (f"the ensemble was trained by {words}{noise}, but the limit describes {assumed}; "
            f"train with Trainer(method={want!r})")


def _kernels(model, keys, x_train, dtype):
    """Θ_lr on the training inputs for each member of ``keys`` at initialisation, (k, M, M).

    Run eagerly (vmapped over the members): one op stream, no compilation, which
    costs a fraction of a second where jit would recompile for every model."""
    lr = model.learning_rates()

    def one(key):
        params = model.init(jax.random.split(key)[0], dtype)
        jac = jax.jacrev(lambda p: model.apply(p, x_train))(params)
        terms = jax.tree_util.tree_map(lambda j, s: s * (lambda a: a @ a.T)(j.reshape(j.shape[0], -1)), jac, lr)
        return sum(jax.tree_util.tree_leaves(terms))

    return jax.vmap(one)(keys)


def step_stability(model, data, trainer, keys, dtype=jnp.float32) -> dict:
    """Estimate the step's rate against the stability bound from the members of ``keys`` at initialisation.

    One step on the rows S (|S| = B, the mean loss over them) moves their
    outputs by −(α/B) Θ_lr[S, S](f − y) to first order, so it overshoots
    unless α λ_max(Θ_lr[S, S])/B < 2. The rate checked is, by method:

    * full batch (S = all M rows): α λ_max(Θ_lr)/M;
    * online (B = 1, one random row): α max_i Θ_lr(x_i, x_i), the row whose
      own step overshoots most (every visit multiplies its residual by
      |1 − α Θ_lr(x_i, x_i)|);
    * minibatch: the larger of α λ_max(Θ_lr)/M (the mean step) and
      α max_i Θ_lr(x_i, x_i)/B (a lower bound for any batch holding row i).

    Returns a JSON-serialisable record: ``{"checked": True, "rate": max over
    members, "rates": [...], "bound": 2.0, "members": k, "stable": bool,
    "method": ...}``, or ``{"checked": False, "reason": ...}`` for an optax
    optimizer (its own state sets the step) or a Jacobian too large to form.
    """
    if trainer.method == "optax":
        return {"checked": False, "reason": "an optax optimizer sets its own step; the check covers fullbatch, "
                                            "online and minibatch"}
    shapes = jax.eval_shape(lambda k: model.init(k, dtype), jax.random.key(0))
    n_param = sum(math.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes))
    need = len(keys) * data.n_train * n_param * jnp.dtype(dtype).itemsize
    if need > STEP_CHECK_BYTES:
        return {"checked": False, "reason": f"the members' Jacobians would need {need / 2**30:.3g} GiB"}
    kernels = np.asarray(_kernels(model, keys, jnp.asarray(data.x_train, dtype), dtype), np.float64)
    alpha = float(trainer.alpha)
    mean_step = alpha * np.linalg.eigvalsh(kernels)[:, -1] / data.n_train
    one_row = alpha * np.diagonal(kernels, axis1=1, axis2=2).max(axis=1)
    if trainer.method == "fullbatch":
        rates = mean_step
    elif trainer.method == "online":
        rates = one_row
    else:
        rates = np.maximum(mean_step, one_row / trainer.batch_size)
    rate = float(np.max(rates))
    return {"checked": True, "method": trainer.method, "rate": rate, "rates": rates.tolist(),
            "bound": STABILITY_BOUND, "members": int(len(rates)), "stable": bool(rate < STABILITY_BOUND)}


def _options(model) -> str:
    """The options that set the step, in the model's own terms (library and command line)."""
    if getattr(model, "time_step", None) is not None and hasattr(model, "steps_to") \
            and type(model).__name__ != "TwoLayer":
        fix = "reduce the model's time_step (--step on the command line) or the Trainer's alpha (--alpha)"
    else:
        fix = "reduce the Trainer's alpha (--alpha)"
    if type(model).__name__ == "UserNetwork":
        fix += ", or give from_equinox/UserNetwork an lr_scale (1/fan-in per weight leaf is the NTK scaling)"
    return fix


_RATE_WORDS = {
    "fullbatch": ("α λ_max/M", "λ_max of the kernel of the engine's per-leaf rates on the training set",
                  "full-batch descent diverges"),
    "online": ("α max_i Θ(x_i, x_i)", "the kernel of the engine's per-leaf rates at its largest training row",
               "online SGD overshoots on that row at every visit and diverges"),
    "minibatch": ("α max(λ_max/M, max_i Θ(x_i, x_i)/B)", "the kernel of the engine's per-leaf rates",
                  "minibatch SGD diverges"),
}


def rate_name(record: dict) -> str:
    """How the record's rate is written (α λ_max/M for full batch, …)."""
    return _RATE_WORDS[record.get("method", "fullbatch")][0]


def unstable_step_message(model, record: dict) -> str:
    """One line: the measured rate against the bound, what follows, and which option to change."""
    name, kernel, consequence = _RATE_WORDS[record.get("method", "fullbatch")]
    return (f"unstable step: {name} = {record['rate']:.3g} > {record['bound']:g} at initialisation "
            f"({kernel}, largest of {record['members']} members), so {consequence}; {_options(model)}")


def check_step(model, data, trainer, keys, dtype, mode: str, *, stacklevel: int = 3) -> dict:
    """:func:`step_stability`, then warn (``"warn"``), refuse (``"error"``) or skip (``"off"``);
    ``stacklevel`` is the warning's, counted from here (3: the caller of the function that calls this)."""
    if mode not in STEP_CHECKS:
        raise InputError(f"step_check must be one of {', '.join(STEP_CHECKS)}, got {mode!r}")
    if mode == "off":
        return {"checked": False, "reason": "step_check='off'"}
    record = step_stability(model, data, trainer, keys, dtype)
    if record["checked"] and not record["stable"]:
        message = unstable_step_message(model, record)
        if mode == "error":
            raise InputError(message)
        import warnings

        warnings.warn(message, UnstableStepWarning, stacklevel=stacklevel)
    return record


def diverged_members(outputs, loss, threshold: float) -> np.ndarray:
    """Which members diverged: an output non-finite or beyond ``threshold`` in absolute value at any
    saved time, or a non-finite loss. ``outputs`` (E, …), ``loss`` (E, …); returns (E,) booleans."""
    outputs, loss = np.asarray(outputs), np.asarray(loss)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(outputs) | (np.abs(outputs) > threshold)
    return bad.reshape(len(outputs), -1).any(axis=1) | ~np.isfinite(loss.reshape(len(loss), -1)).all(axis=1)


def divergence_message(n_diverged: int, n_members: int, step_record: dict | None, model: Any, *,
                       during: tuple[int, int] | None = None) -> str:
    """One line: how many members diverged and the likely cause. ``during=(trained, step)``: said while
    training, after ``trained`` members reached step ``step``."""
    if step_record and step_record.get("checked") and not step_record.get("stable"):
        cause = (f"the step is above the stability bound ({rate_name(step_record)} = {step_record['rate']:.3g} > "
                 f"{step_record['bound']:g})")
    else:
        cause = "the step is too large for the network's dynamics (or divergence_threshold is too low)"
    if during is not None:
        trained, step = during
        return (f"{n_diverged} of the first {trained} of {n_members} members diverged by step {step}; likely "
                f"cause: {cause}; {_options(model)}; training goes on, and the final count comes when it ends")
    return (f"{n_diverged} of {n_members} members diverged; likely cause: {cause}; {_options(model)}; "
            "statistics must use result.finite()")


__all__ = ["DivergenceWarning", "STABILITY_BOUND", "STEP_CHECKS", "STEP_CHECK_MEMBERS", "TrainingMethodWarning",
           "UnstableStepWarning", "check_step", "diverged_members", "divergence_message", "rate_name",
           "step_stability",
           "training_method_mismatch", "unstable_step_message"]
