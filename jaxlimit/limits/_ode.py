"""The one place where diffrax's ``diffeqsolve`` is configured.

Every limit that integrates an ODE calls :func:`solve_ode`: the solver and
the step-size controller are objects passed in (diffrax's design), the
tolerances follow the dtype of the state (a float32 state cannot be solved
to 1e-10), and a solver that runs out of steps or meets a non-finite state
raises one :class:`~jaxlimit.errors.InputError` line that names the option
to change instead of diffrax's runtime traceback.
"""

from __future__ import annotations

from typing import Any, Callable

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError

DEFAULT_MAX_STEPS = 1_000_000


def default_tolerances(dtype) -> tuple[float, float]:
    """(rtol, atol) that a state of ``dtype`` can reach: 1e-10/1e-12 in float64,
    1e-5/1e-7 in float32 (a few hundred ulps, so the controller never chases rounding)."""
    if jnp.dtype(dtype) == jnp.float64:
        return 1e-10, 1e-12
    return 1e-5, 1e-7


def check_times(times, *, name: str = "times", allow_inf: bool = False) -> np.ndarray:
    """A non-empty 1-D array of non-negative, non-decreasing times (float64);
    ∞ (the converged limit) only with ``allow_inf``, never NaN."""
    try:
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a list of numbers, got {times!r}") from None
    if t.ndim != 1 or t.size == 0:
        raise InputError(f"{name} must be a non-empty 1-D list of numbers")
    if np.any(np.isnan(t)):
        raise InputError(f"{name} contain NaN")
    if np.any(t < 0) or (not allow_inf and not np.all(np.isfinite(t))):
        raise InputError(f"{name} must be {'' if allow_inf else 'finite and '}non-negative numbers")
    if np.any(np.diff(t) < 0):
        raise InputError(f"{name} must be non-decreasing")
    return t


def solve_ode(
    field: Callable[[Any, Any, Any], Any],
    y0: Any,
    times,
    *,
    args: Any = None,
    t0: float = 0.0,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    adjoint: diffrax.AbstractAdjoint | None = None,
    steps_option: str = "the horizon (t_max)",
    check: bool = True,
    save: Callable[[Any, Any, Any], Any] | None = None,
) -> Any:
    """Integrate dy/dt = field(t, y, args) from ``t0`` and save at ``times``.

    Args:
        field: the vector field, diffrax's signature ``(t, y, args) -> dy/dt``.
        y0: the initial state, any pytree of arrays.
        times: save times ≥ t0, non-decreasing; the result has a leading axis
            of length T on every leaf.
        solver: a diffrax solver object (Tsit5 by default).
        rtol, atol: the PID controller's tolerances; by default from
            :func:`default_tolerances` for the dtype of ``y0``.
        max_steps: the step budget; exhausting it raises an InputError naming
            ``steps_option``, the user-facing option that shortens the solve.
        adjoint: diffrax's adjoint (e.g. ``ForwardMode()`` for nested jvp).
        check: raise on failure (set False inside ``jit``/``vmap``, where the
            caller checks the returned values itself).
        save: what to keep at each save time, ``save(t, y, args)`` (diffrax's
            ``SaveAt(fn=...)``); the whole state by default. A large state
            (thousands of particles) saved at many times need not be held.

    Returns:
        The saved states (or ``save`` values), each leaf of shape (T, ...).
    """
    t = check_times(times)
    if t[0] < t0:
        raise InputError(f"save times must not precede t0 = {t0}")
    leaves = jax.tree_util.tree_leaves(y0)
    dtype = jnp.result_type(*leaves) if leaves else jnp.float64
    d_rtol, d_atol = default_tolerances(dtype)
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    t1 = float(t[-1])
    if t1 == t0:
        first = y0 if save is None else save(t0, y0, args)
        return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (len(t), *jnp.shape(a))), first)
    kwargs = {} if adjoint is None else {"adjoint": adjoint}
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5() if solver is None else solver,
        t0=t0, t1=t1, dt0=None, y0=y0, args=args,
        saveat=diffrax.SaveAt(ts=jnp.asarray(t, dtype if jnp.issubdtype(dtype, jnp.floating) else None),
                              **({} if save is None else {"fn": save})),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=int(max_steps), throw=False, **kwargs,
    )
    if check and not isinstance(sol.result, jax.core.Tracer):
        if sol.result == diffrax.RESULTS.max_steps_reached:
            raise InputError(
                f"the ODE solver needed more than {max_steps} steps to reach t = {t1:g}; "
                f"reduce {steps_option}"
            )
        if not sol.result == diffrax.RESULTS.successful:
            raise InputError(
                f"the ODE solver failed before t = {t1:g} ({sol.result}); the limit diverges or is "
                f"too stiff at these settings; reduce {steps_option}"
            )
        if not all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(sol.ys)):
            raise InputError(f"the limit ODE left the finite numbers before t = {t1:g}; reduce {steps_option}")
    return sol.ys


__all__ = ["DEFAULT_MAX_STEPS", "check_times", "default_tolerances", "solve_ode"]
