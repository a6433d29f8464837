"""jaxlimit: finite-width network ensembles against their infinite-width limits."""

from jaxlimit.activations import ACTIVATIONS, Activation, get_activation
from jaxlimit.data import Dataset, digits_problem, make_dataset, synthetic_problem
from jaxlimit.errors import InputError
from jaxlimit.losses import Loss, get_loss, huber_loss, squared_loss
from jaxlimit.limits import (
    KernelLimit,
    MLPKernels,
    MonteCarloKernels,
    empirical_ntk,
    estimate_mlp_kernels,
    limit_from_kernels,
    mlp_kernels,
    mlp_limit,
    monte_carlo_kernels,
    MeanFieldLimit,
    XavierKernels,
    XavierLimit,
    estimate_xavier_kernels,
    mean_field_limit,
    predict_fluctuations,
    StudentTrajectories,
    relu_gradient_descent,
    relu_gradient_flow,
    relu_kernel,
    relu_kernel_grad,
    relu_population_grad,
    relu_population_loss,
    relu_reduced_flow,
    relu_sgd,
    run_width_coupling,
    single_neuron_bound,
    symmetric_saddle_value,
    teacher_distance,
    xavier_kernels,
    xavier_limit,
)
from jaxlimit.models import (
    MLP,
    UserNetwork,
    from_equinox,
    SCALINGS,
    InitLaw,
    ThreeLayer,
    ThreeLayerInit,
    TwoLayer,
    TwoLayerParams,
    resolve_gamma,
)
from jaxlimit.stats import (
    Gaussian,
    GaussianComparison,
    PowerLawFit,
    bootstrap_ci,
    compare_gaussian,
    fit_power_law,
    gaussian_w2,
    proportion_interval,
)
from jaxlimit.training import EnsembleResult, Trainer, rms_parameter_change, run_ensemble

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "Activation", "Dataset", "EnsembleResult", "InitLaw", "InputError", "Loss",
    "SCALINGS", "Trainer", "TwoLayer", "TwoLayerParams", "digits_problem", "get_activation",
    "get_loss", "huber_loss", "make_dataset", "resolve_gamma", "rms_parameter_change",
    "run_ensemble", "squared_loss", "synthetic_problem",
    # models and limits
    "ThreeLayer", "ThreeLayerInit", "XavierKernels", "XavierLimit", "MeanFieldLimit",
    "estimate_xavier_kernels", "mean_field_limit", "predict_fluctuations", "relu_population_grad",
    "relu_population_loss", "run_width_coupling", "xavier_kernels", "xavier_limit",
    "StudentTrajectories", "relu_gradient_descent", "relu_gradient_flow", "relu_kernel",
    "relu_kernel_grad", "relu_reduced_flow", "relu_sgd", "single_neuron_bound",
    "symmetric_saddle_value", "teacher_distance",
    # deep networks
    "KernelLimit", "MLP", "MLPKernels", "MonteCarloKernels", "UserNetwork", "empirical_ntk",
    "estimate_mlp_kernels", "from_equinox", "limit_from_kernels", "mlp_kernels", "mlp_limit",
    "monte_carlo_kernels",
    # statistics
    "Gaussian", "GaussianComparison", "PowerLawFit", "bootstrap_ci", "compare_gaussian",
    "fit_power_law", "gaussian_w2", "proportion_interval",
]
