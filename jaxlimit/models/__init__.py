"""Networks as pure functions: an immutable description plus init/apply."""

from jaxlimit.models.base import Model
from jaxlimit.models.two_layer import SCALINGS, InitLaw, TwoLayer, TwoLayerParams, resolve_gamma

__all__ = ["Model", "SCALINGS", "InitLaw", "TwoLayer", "TwoLayerParams", "resolve_gamma"]
