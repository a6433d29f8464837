"""Networks as pure functions: an immutable description plus init/apply."""

from jaxlimit.models.base import Model, check_time_step, steps_for
from jaxlimit.models.mlp import MLP, Dense
from jaxlimit.models.user import UserNetwork, from_equinox
from jaxlimit.models.three_layer import (
    DEGENERATE_INIT, ThreeLayer, ThreeLayerInit, ThreeLayerParams, three_layer_model, time_schedule,
)
from jaxlimit.models.relu_committee import (
    relu_committee, relu_committee_monte_carlo, relu_committee_sample_grad,
    relu_committee_sample_loss,
)
from jaxlimit.models.two_layer import SCALINGS, InitLaw, TwoLayer, TwoLayerParams, resolve_gamma

__all__ = ["Model", "MLP", "Dense", "UserNetwork", "from_equinox", "check_time_step", "steps_for",
    "DEGENERATE_INIT", "ThreeLayer", "ThreeLayerInit", "ThreeLayerParams", "three_layer_model",
    "time_schedule", "SCALINGS", "InitLaw", "TwoLayer", "TwoLayerParams", "resolve_gamma",
    "relu_committee", "relu_committee_monte_carlo", "relu_committee_sample_grad",
    "relu_committee_sample_loss"]
