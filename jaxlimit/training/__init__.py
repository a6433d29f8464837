"""Training: pure one-step updates and the chunked, vmapped ensemble engine."""

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
from jaxlimit.training.steps import METHODS, Trainer, make_step

__all__ = [
    "DEFAULT_LANES", "DEFAULT_MEMORY_BUDGET", "DivergenceWarning", "EnsembleResult", "TrainingMethodWarning",
    "UnstableStepWarning", "training_method_mismatch", "METHODS", "Trainer", "make_step",
    "member_keys", "rms_parameter_change", "run_ensemble", "validate_times",
]
