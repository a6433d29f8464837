"""jaxlimit: finite-width network ensembles against their infinite-width limits.

The public API is loaded on first use (PEP 562), so that ``jaxlimit --help``
and the option checks do not pay for importing JAX.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

# One single-threaded CPU device per core, as the command line runs, when JAX has not started
# yet (JAXLIMIT_CPU_CORES=0 opts out; see jaxlimit.devices). Sets XLA_FLAGS only.
from jaxlimit.devices import configure_at_import as _configure_at_import  # noqa: E402

_configure_at_import()

_EXPORTS: dict[str, str] = {}


def _export(module: str, *names: str) -> None:
    for name in names:
        _EXPORTS[name] = module


# The curated top level: what the README, the notebooks and a user's script call. Specialised
# helpers (kernel recursions, the ReLU teacher–student flows, statistics' building blocks, the
# limits' classes) stay in their subpackages: jaxlimit.limits, jaxlimit.stats, jaxlimit.training, …
_export("jaxlimit.errors", "InputError")
# Data and models
_export("jaxlimit.data", "Dataset", "OnlineData", "digits_problem", "make_dataset", "online_data", "synthetic_problem",
        "teacher_student_stream")
_export("jaxlimit.streams", "stream_key")
_export("jaxlimit.models", "MLP", "TwoLayer", "ThreeLayer", "InitLaw", "UserNetwork", "from_equinox")
_export("jaxlimit.models.feature_mlp", "FeatureMLP")
_export("jaxlimit.models.parameterisation", "LayerScaling", "Parameterisation")
# Training an ensemble
_export("jaxlimit.losses", "huber_loss", "squared_loss")
_export("jaxlimit.training", "EnsembleResult", "Trainer", "run_ensemble", "rms_parameter_change")
_export("jaxlimit.training", "Execution", "Checkpoint", "Guards")  # run_ensemble's execution, saving, guards
_export("jaxlimit.limits", "ntk_observable")
_export("jaxlimit.training", "DivergenceWarning", "TrainingMethodWarning", "UnstableStepWarning")
_export("jaxlimit.training.coord_check", "coord_check")
_export("jaxlimit.training.transfer", "lr_transfer")
_export("jaxlimit.models.scaled", "declare")
# Limits: the interface and one constructor per limit
_export("jaxlimit.limits", "Limit", "LinearNoise", "ode_limit", "lazy_limit", "mlp_kernels", "mlp_limit",
        "monte_carlo_kernels", "empirical_ntk", "xavier_limit", "mean_field_limit", "population_flow_limit")
_export("jaxlimit.training.three_layer", "three_layer_limit")
_export("jaxlimit.limits.committee", "committee_ode")
_export("jaxlimit.limits.dmft", "dmft_limit")
_export("jaxlimit.limits.corrections", "mlp_corrections")
_export("jaxlimit.limits.training_correction", "mlp_training_correction")
# Comparing
_export("jaxlimit.stats", "Comparison", "compare", "Gaussian", "compare_gaussian", "fit_power_law")
# Commands as a library, reports, devices
_export("jaxlimit.experiments", "run")
_export("jaxlimit.report", "Report", "write_report")
_export("jaxlimit.devices", "enable_compilation_cache", "use_cpu_cores")

_SUBPACKAGES = ("activations", "config", "data", "devices", "experiments", "figures", "limits", "losses", "models", "report",
                "stats", "streams", "training")

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"jaxlimit.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jaxlimit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
