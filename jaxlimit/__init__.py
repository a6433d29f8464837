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


_export("jaxlimit.errors", "InputError")
_export("jaxlimit.config", "ConfigError")
_export("jaxlimit.activations", "ACTIVATIONS", "Activation", "get_activation")
_export("jaxlimit.data", "Dataset", "digits_problem", "make_dataset", "synthetic_problem")
_export("jaxlimit.losses", "Loss", "get_loss", "huber_loss", "squared_loss")
_export("jaxlimit.names", "SCALINGS", "resolve_gamma")
_export("jaxlimit.streams", "stream_key")
_export("jaxlimit.limits", "Limit", "LinearNoise", "ODELimit", "ode_limit", "lazy_limit", "KernelLimit", "MLPKernels", "MonteCarloKernels", "empirical_ntk", "estimate_mlp_kernels", "ntk_observable",
        "limit_from_kernels", "mlp_kernels", "mlp_limit", "monte_carlo_kernels")
_export("jaxlimit.models", "MLP", "UserNetwork", "from_equinox")
_export("jaxlimit.models", "InitLaw", "ThreeLayer", "ThreeLayerInit", "TwoLayer", "TwoLayerParams")
_export("jaxlimit.training", "EnsembleResult", "Trainer", "rms_parameter_change", "run_ensemble")
_export("jaxlimit.training", "DivergenceWarning", "TrainingMethodWarning", "UnstableStepWarning",
        "training_method_mismatch")
_export("jaxlimit.limits", "MeanFieldLimit", "XavierKernels", "XavierLimit", "estimate_xavier_kernels",
        "mean_field_limit", "predict_fluctuations", "PopulationFlowLimit", "StudentTrajectories",
        "population_flow_limit",
        "relu_gradient_flow", "relu_kernel", "relu_kernel_grad", "relu_population_grad",
        "relu_population_loss", "relu_reduced_flow",
        "single_neuron_bound", "symmetric_saddle_value", "teacher_distance", "xavier_kernels",
        "xavier_limit")
_export("jaxlimit.limits.committee", "CommitteeODE", "committee_ode")
_export("jaxlimit.limits.dmft", "dmft_limit", "TwoLayerLinearDMFT")
_export("jaxlimit.models.feature_mlp", "FeatureMLP")
_export("jaxlimit.training.teacher_student", "relu_gradient_descent", "relu_sgd")
_export("jaxlimit.training.three_layer", "run_width_coupling", "three_layer_limit")
_export("jaxlimit.stats", "Comparison", "compare", "Gaussian", "GaussianComparison", "PowerLawFit", "bootstrap_ci", "compare_gaussian",
        "fit_power_law", "gaussian_w2", "proportion_interval")
_export("jaxlimit.limits.corrections", "MLPCorrections", "mlp_corrections")
_export("jaxlimit.report", "Report", "write_report")
_export("jaxlimit.devices", "enable_compilation_cache", "use_cpu_cores")
_export("jaxlimit.experiments", "run")
_export("jaxlimit.models.parameterisation", "LayerScaling", "Parameterisation", "get_parameterisation")
_export("jaxlimit.training.coord_check", "coord_check")
_export("jaxlimit.training.transfer", "lr_transfer")
_export("jaxlimit.models.scaled", "ScaledNetwork", "declare")

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
