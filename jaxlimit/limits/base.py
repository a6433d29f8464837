"""The one interface every limit implements (docs/limits.md).

A limit answers what an ensemble of finite networks should look like at a list
of training times: ``predict(times)`` is a :class:`~jaxlimit.stats.Gaussian`
with mean (T, P) and covariance (T, P, P) over the P output points (training
points first). Like neural-tangents' ``predict`` functions it is a function of
time; like diffrax's solvers and optax's transformations it is a small object
built once and asked many times: no ``times`` at construction, and a limit
never trains a network.

Three optional parts, each with a default that says "not defined":

* ``pathwise(f0, times)``: a limit that defines a path per network (the flow
  started from that network's own outputs at t = 0) returns the paths, shape
  (E, T, P). The default raises, and :attr:`Limit.has_paths` is False.
* ``describes(model, data, trainer)``: refuses, with one :class:`InputError`
  line, a model, data set or training method that the limit does not describe.
  The default compares :attr:`Limit.assumptions` with the descriptions the
  model, data and trainer give of themselves.
* ``fluctuation_scale``: for a limit that is deterministic at infinite size
  (mean field, an ODE with linear-noise fluctuations, the three-layer proxy),
  the scale 1/N of the finite system's covariance that ``predict`` returns
  (its covariance is then O(1/N) and shrinks with the size); None for a limit
  whose law is random at infinite width (the kernel limits: an O(1) covariance)
  or that predicts no fluctuations.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.stats.gaussian import Gaussian

GRADIENT_FLOW = "fullbatch"
"""The training method of every gradient-flow limit: full-batch descent, whose
small-step limit the flow is (the engine's ``Trainer(method="fullbatch")``)."""


class Limit(eqx.Module):
    """A prediction of the outputs of finite networks at any training time.

    Subclasses implement :meth:`predict` and may override :meth:`pathwise`,
    :attr:`assumptions`, :meth:`describes` and :attr:`fluctuation_scale`.
    """

    @abc.abstractmethod
    def predict(self, times) -> Gaussian:
        """The law of the outputs at ``times``: mean (T, P), covariance (T, P, P)."""

    def pathwise(self, f0, times):
        """Each network's own limit path from its outputs ``f0`` (E, P) at t = 0: shape (E, T, P)."""
        raise InputError(f"{type(self).__name__} defines no path per network (compare laws with predict)")

    @property
    def has_paths(self) -> bool:
        """Whether :meth:`pathwise` is defined."""
        return type(self).pathwise is not Limit.pathwise

    @property
    def fluctuation_scale(self) -> float | None:
        """1/N when the limit is deterministic at infinite size and ``predict``'s covariance is the O(1/N)
        law of size-N systems; None otherwise (module docstring)."""
        return None

    @property
    def assumptions(self) -> dict[str, Any]:
        """What the limit describes, in the vocabulary of ``describe()``: keys ``"model"``,
        ``"trainer"``, ``"data"``, each a dict of the settings that must match (empty: anything)."""
        return {}

    def _repr_html_(self) -> str:  # a notebook: what the limit is and what it assumes
        from jaxlimit.display import limit_html

        return limit_html(self)

    def describes(self, model=None, data=None, trainer=None) -> None:
        """Refuse (InputError, one line) a model, data set or trainer that this limit does not describe."""
        given = {"model": model, "data": data, "trainer": trainer}
        actual = {k: _described(v) for k, v in given.items() if v is not None}
        reason = mismatch(self.assumptions, actual)
        if reason:
            raise InputError(f"{type(self).__name__} does not describe this run: {reason}")


def normalised(description: dict) -> dict:
    """A ``describe()`` dict with the derived settings limits assume: ``depth`` = the number of hidden
    widths of a network described by its ``widths``."""
    out = dict(description)
    if "widths" in out and "depth" not in out:
        out["depth"] = len(out["widths"])
    return out


def _described(obj) -> dict:
    if hasattr(obj, "describe"):
        return normalised(obj.describe())
    if isinstance(obj, dict):
        return normalised(obj)
    return {}


def _same(expected, actual) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        try:
            return bool(np.isclose(float(expected), float(actual), rtol=1e-12, atol=0.0))
        except (TypeError, ValueError):
            return False
    return expected == actual


def mismatch(assumptions: dict, actual: dict) -> str | None:
    """The first setting in ``assumptions`` that ``actual`` contradicts, as
    ``"model activation is 'tanh', the limit assumes 'relu'"``; None when all agree.

    Both are ``{"model": {...}, "trainer": {...}, "data": {...}}``; a setting
    missing from ``actual`` is not a contradiction (the run did not say).
    """
    for part, settings in assumptions.items():
        got = actual.get(part)
        if not got:
            continue
        for key, want in settings.items():
            if key in got and not _same(want, got[key]):
                return f"{part} {key} is {got[key]!r}, the limit assumes {want!r}"
    return None


__all__ = ["GRADIENT_FLOW", "Limit", "mismatch", "normalised"]
