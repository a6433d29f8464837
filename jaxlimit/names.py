"""The names users type, in one light module (no JAX import), so that option
checks and ``jaxlimit --help`` need no heavy imports.

The registries that give these names meaning (``activations.ACTIVATIONS``,
``losses``, ``training.steps.METHODS``) assert at import that they agree.
"""

from __future__ import annotations

from jaxlimit.errors import InputError

ACTIVATION_NAMES = ("tanh", "erf", "relu", "sigmoid", "gelu", "identity", "abs", "sin", "cos", "leaky_relu")
LOSS_NAMES = ("squared", "huber")
METHODS = ("online", "minibatch", "fullbatch", "optax")
SCALINGS: dict[str, float] = {"xavier": 0.5, "mean-field": 1.0}
DEFAULT_LANES = {"cpu": 64, "gpu": 1024, "tpu": 1024}
"""The engine's default vmap width by backend (``jaxlimit.training.ensemble``): a CPU keeps one
block's weights in cache; an accelerator needs wide blocks to fill its cores."""


def resolve_gamma(scaling: str | float) -> float:
    """Map a preset name (``"xavier"``, ``"mean-field"``) or a number to γ ∈ [1/2, 1]."""
    if isinstance(scaling, str):
        if scaling in SCALINGS:
            return SCALINGS[scaling]
        try:
            scaling = float(scaling)
        except ValueError:
            raise InputError(
                f"unknown scaling {scaling!r}; use xavier, mean-field or a number in [0.5, 1]"
            ) from None
    if isinstance(scaling, bool) or not isinstance(scaling, (int, float)):
        raise InputError(f"scaling must be xavier, mean-field or a number in [0.5, 1], got {scaling!r}")
    gamma = float(scaling)
    if not 0.5 <= gamma <= 1.0:
        raise InputError(f"gamma must lie in [0.5, 1], got {gamma}")
    return gamma
