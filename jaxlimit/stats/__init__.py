"""Statistics for comparing ensembles with limit predictions (THEORY §6)."""

from jaxlimit.stats.gaussian import (
    COVARIANCE_RTOL,
    Gaussian,
    GaussianComparison,
    compare_gaussian,
    gaussian_w2,
)
from jaxlimit.stats.scaling import PowerLawFit, bootstrap_ci, fit_power_law, proportion_interval

__all__ = [
    "COVARIANCE_RTOL",
    "Gaussian",
    "GaussianComparison",
    "PowerLawFit",
    "bootstrap_ci",
    "compare_gaussian",
    "fit_power_law",
    "gaussian_w2",
    "proportion_interval",
]
