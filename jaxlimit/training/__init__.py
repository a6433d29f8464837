"""Training: pure one-step updates and the chunked, vmapped ensemble engine, and the
runs the hand-derived limits are compared with (teacher–student gradient descent
and SGD, three-layer width coupling, step-size refinement and proxy ensembles).

The last two modules build on :mod:`jaxlimit.limits` (their runs are compared
with those limits), so they load on first use: ``jaxlimit.training.relu_sgd``
imports :mod:`jaxlimit.training.teacher_student`.
"""

import importlib

from jaxlimit.training.ensemble import (
    DEFAULT_LANES,
    DEFAULT_MEMORY_BUDGET,
    member_keys,
    rms_parameter_change,
    run_ensemble,
    validate_times,
)
from jaxlimit.training.guards import (
    DivergenceWarning,
    TrainingMethodWarning,
    UnstableStepWarning,
    training_method_mismatch,
)
from jaxlimit.training.results import EnsembleResult
from jaxlimit.training.run_options import Checkpoint, Execution, Guards
from jaxlimit.training.steps import METHODS, Trainer, make_step

_LAZY = {
    **{name: "jaxlimit.training.teacher_student" for name in ("relu_gradient_descent", "relu_sgd")},
    **{name: "jaxlimit.training.three_layer" for name in (
        "StepRefinement", "WidthCoupling", "output_gaps", "run_width_coupling", "step_size_refinement",
        "summarize_gaps", "three_layer_limit", "train_proxy", "weight_gaps")},
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jaxlimit.training' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Checkpoint", "DEFAULT_LANES", "DEFAULT_MEMORY_BUDGET", "DivergenceWarning", "EnsembleResult", "Execution",
    "Guards", "TrainingMethodWarning",
    "UnstableStepWarning", "training_method_mismatch", "METHODS", "Trainer", "make_step",
    "member_keys", "rms_parameter_change", "run_ensemble", "validate_times", *sorted(_LAZY),
]
