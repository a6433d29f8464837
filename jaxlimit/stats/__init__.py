"""Statistics for comparing ensembles with limit predictions (docs/statistics.md)."""

from jaxlimit.stats.gaussian import (
    COVARIANCE_RTOL,
    Gaussian,
    GaussianComparison,
    compare_gaussian,
    gaussian_w2,
)
from jaxlimit.stats.compare import Comparison, compare
from jaxlimit.stats.scaling import (
    LineFit, PowerLawFit, Proportion, bootstrap_ci, fit_line, fit_power_law, fit_valid_points, proportion, proportion_interval,
)
from jaxlimit.stats.summaries import (
    Estimate, MedianEstimate, SeedSpread, mean_estimate, median_estimate, ratio_of_means, root_mean_square, seed_spread,
)

__all__ = [
    "COVARIANCE_RTOL",
    "Comparison",
    "compare",
    "Estimate",
    "MedianEstimate",
    "Gaussian",
    "GaussianComparison",
    "LineFit",
    "PowerLawFit",
    "Proportion",
    "SeedSpread",
    "bootstrap_ci",
    "compare_gaussian",
    "fit_line",
    "fit_power_law",
    "fit_valid_points",
    "gaussian_w2",
    "mean_estimate",
    "median_estimate",
    "proportion",
    "proportion_interval",
    "ratio_of_means",
    "root_mean_square",
    "seed_spread",
]
