"""A theorist's own limit: an ODE for a state, an observable, optionally its linear-noise fluctuations
(docs/limits.md#your-own-limit).

The state y ∈ R^S (any pytree, flattened) solves dy/dt = F(t, y) from y(0) = y0
(the project's one diffrax call, :func:`~jaxlimit.limits._ode.solve_ode`),
and the limit's outputs are o(y_t) ∈ R^P. Without fluctuations the limit is
deterministic: ``predict(times)`` is the point mass at o(y_t) (zero
covariance), and :func:`~jaxlimit.compare` tests the ensemble's mean against it.

With :class:`LinearNoise` (the system-size or linear-noise expansion of a
finite system of size N), the state of the finite system is
y_t + Z_t/√N + o(N^{-1/2}) with Z_t Gaussian of covariance Σ_t solving

    dΣ/dt = J Σ + Σ Jᵀ + B(t, y_t),    J = ∂F/∂y (t, y_t)  (jax.jacfwd),

from Σ_0 (zero by default), so the outputs are Gaussian with mean o(y_t) and
covariance O Σ_t Oᵀ / N, O = ∂o/∂y (y_t): the delta method at leading order.
"""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxlimit.errors import InputError
from jaxlimit.limits._ode import check_times, solve_ode
from jaxlimit.limits.base import Limit
from jaxlimit.stats.gaussian import Gaussian
from jaxlimit.validation import require_real


class LinearNoise(eqx.Module):
    """The fluctuations of a finite system of size N around an ODE limit, at leading order.

    Attributes:
        diffusion: B(t, y, args) -> (S, S), the covariance rate that one unit of
            time adds to √N (y^N − y), on the flattened state: the order of
            ``jax.flatten_util.ravel_pytree(y)`` (leaves in tree order, so dict
            keys sorted); flatten a state of the same structure to build it.
        size: N; the finite system's covariance is Σ/N.
        initial: Σ_0 (S, S), the initial covariance of √N (y^N_0 − y_0), same order; zero by default.
    """

    diffusion: Callable | None
    size: float
    initial: Any = None

    def __check_init__(self):
        require_real(self.size, "fluctuations.size")


class ODELimit(Limit):
    """A user's deterministic ODE limit, with its linear-noise fluctuations when given (module docstring).

    Attributes:
        vector_field: F(t, y, args), diffrax's convention.
        y0: the initial state (any pytree of arrays).
        observable: o(y) -> the outputs (P,).
        fluctuations: a :class:`LinearNoise`, or None for a deterministic limit.
        args: passed to ``vector_field`` and ``diffusion``.
        description: what the limit describes (``Limit.assumptions``), e.g.
            ``{"trainer": {"method": "fullbatch"}}``.
    """

    vector_field: Callable
    y0: Any
    observable: Callable
    fluctuations: LinearNoise | None = None
    args: Any = None
    description: dict = eqx.field(default_factory=dict)

    @property
    def assumptions(self) -> dict:
        return self.description

    @property
    def fluctuation_scale(self) -> float | None:
        return None if self.fluctuations is None else 1.0 / float(self.fluctuations.size)

    def _flat(self):
        flat, unravel = ravel_pytree(self.y0)
        return jnp.asarray(flat, jnp.float64 if jax.config.jax_enable_x64 else flat.dtype), unravel

    def trajectory(self, times, *, rtol: float | None = None, atol: float | None = None):
        """The state y_t at ``times`` (leading axis T on every leaf)."""
        t = check_times(times)
        flat, unravel = self._flat()

        def field(s, y, args):
            return ravel_pytree(self.vector_field(s, unravel(y), args))[0]

        ys = solve_ode(field, flat, t, args=self.args, rtol=rtol, atol=atol)
        return jax.vmap(unravel)(ys)

    def predict(self, times, *, rtol: float | None = None, atol: float | None = None) -> Gaussian:
        """N(o(y_t), O Σ_t Oᵀ / N) at ``times`` (zero covariance without fluctuations)."""
        t = check_times(times)
        flat, unravel = self._flat()
        n_state = flat.size

        def f(s, y, args):
            return ravel_pytree(self.vector_field(s, unravel(y), args))[0]

        def out(y):
            return jnp.ravel(jnp.asarray(self.observable(unravel(y))))

        probe = out(flat)
        if probe.ndim != 1 or probe.size == 0:
            raise InputError(f"the observable must return the outputs as a non-empty vector (P,), "
                             f"got shape {probe.shape}")
        if self.fluctuations is None:
            ys = solve_ode(f, flat, t, args=self.args, rtol=rtol, atol=atol)
            mean = jax.vmap(out)(ys)
            return Gaussian(mean, jnp.zeros((*mean.shape, mean.shape[-1]), mean.dtype), t)

        noise = self.fluctuations
        sigma0 = (jnp.zeros((n_state, n_state), flat.dtype) if noise.initial is None
                  else jnp.asarray(noise.initial, flat.dtype))
        if sigma0.shape != (n_state, n_state):
            raise InputError(f"fluctuations.initial must have shape ({n_state}, {n_state}) for a state of "
                             f"{n_state} numbers, got {sigma0.shape}")

        def joint(s, state, args):
            y, sigma = state
            jac = jax.jacfwd(lambda v: f(s, v, args))(y)
            b = (jnp.zeros_like(sigma) if noise.diffusion is None
                 else jnp.asarray(noise.diffusion(s, unravel(y), args), flat.dtype))
            return f(s, y, args), jac @ sigma + sigma @ jac.T + b

        ys, sigmas = solve_ode(joint, (flat, sigma0), t, args=self.args, rtol=rtol, atol=atol)
        mean = jax.vmap(out)(ys)
        o = jax.vmap(jax.jacfwd(out))(ys)  # (T, P, S)
        cov = jnp.einsum("tps,tsr,tqr->tpq", o, sigmas, o) / float(noise.size)
        return Gaussian(mean, 0.5 * (cov + jnp.swapaxes(cov, 1, 2)), t)


def ode_limit(vector_field: Callable, y0, observable: Callable, *, fluctuations: LinearNoise | None = None,
              args: Any = None, describes: dict | None = None) -> ODELimit:
    """Turn a user's ODE into a :class:`~jaxlimit.limits.Limit`.

    Args:
        vector_field: ``vector_field(t, y, args) -> dy/dt`` (diffrax's convention), y any pytree.
        y0: the initial state.
        observable: ``observable(y) -> (P,)``, the outputs the networks are compared on (training
            points first, as the ensemble records them).
        fluctuations: optional :class:`LinearNoise` for the O(N^{-1/2}) Gaussian fluctuations of a system of size N.
        args: passed to ``vector_field`` (and the diffusion).
        describes: what the limit assumes, e.g. ``{"trainer": {"method": "fullbatch", "alpha": 1.0}}``;
            :func:`~jaxlimit.compare` refuses a contradicting run and names a different training method.

    ``predict(times)`` solves when asked (nothing is solved here) and returns a
    ``Gaussian`` labelled with its times. The state is checked now: y0 must be
    finite, and the vector field and observable must evaluate on it.
    """
    if not callable(vector_field) or not callable(observable):
        raise InputError("ode_limit needs a callable vector_field(t, y, args) and a callable observable(y)")
    if fluctuations is not None and not isinstance(fluctuations, LinearNoise):
        raise InputError(f"fluctuations must be a jaxlimit.LinearNoise, got {type(fluctuations).__name__}")
    flat, unravel = ravel_pytree(y0)
    if flat.size == 0 or not bool(jnp.all(jnp.isfinite(flat))):
        raise InputError("y0 must be a non-empty state of finite numbers")
    try:
        dy = ravel_pytree(vector_field(0.0, y0, args))[0]
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - a user's function can raise anything; say where it failed
        raise InputError(f"vector_field(0, y0, args) failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if dy.shape != flat.shape:
        raise InputError(f"vector_field must return a state of the shape of y0 ({flat.size} numbers), "
                         f"got {dy.size}")
    return ODELimit(vector_field, y0, observable, fluctuations, args, dict(describes or {}))


__all__ = ["LinearNoise", "ODELimit", "ode_limit"]
