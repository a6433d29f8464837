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
    spread_ratio,
)
# The building blocks of ``compare``, public for a study that assembles its own comparison
# (notebooks 01 and 05 do): the calibrated verdict over several times, each network against its
# own limit path, and the covariance error that exact samples of a given size show.
from jaxlimit.stats.coupling import PathwiseError, pathwise_error
from jaxlimit.stats.nulls import covariance_error_null
from jaxlimit.stats.verdict import TimeVerdict, verdict_over_times

__all__ = [
    "COVARIANCE_RTOL",
    "PathwiseError",
    "TimeVerdict",
    "covariance_error_null",
    "pathwise_error",
    "verdict_over_times",
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
    "spread_ratio",
]
