"""Statistics for comparing ensembles with limit predictions (docs/statistics.md)."""

from jaxlimit.stats.gaussian import (
    COVARIANCE_RTOL,
    Gaussian,
    GaussianComparison,
    compare_gaussian,
    gaussian_w2,
)
from jaxlimit.stats.scaling import (
    PowerLawFit, Proportion, bootstrap_ci, fit_power_law, proportion, proportion_interval,
)

__all__ = [
    "COVARIANCE_RTOL",
    "Gaussian",
    "GaussianComparison",
    "PowerLawFit",
    "Proportion",
    "bootstrap_ci",
    "compare_gaussian",
    "fit_power_law",
    "gaussian_w2",
    "proportion",
    "proportion_interval",
]
