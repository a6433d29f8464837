"""The glossary of report metrics: what each name in report.json / report.md measures.

``docs/metrics.md`` is generated from this module (:func:`glossary_markdown`; a
test keeps the two equal) and linked from every report.md; a notebook's report
shows each metric's line beside its value. Names are explained whole where
listed in :data:`METRICS`, else by their family (:data:`SUFFIXES`: ``_se``,
``_null``, ``_resolution``, …). Light module: no JAX.
"""

from __future__ import annotations

RESOLVED_RULE = ("“resolved” when the effect exceeds twice the largest of its noise levels (its standard error, "
                 "or the size it has when the limit is exact), else “not resolved at this size” "
                 "(docs/statistics.md)")

METRICS: dict[str, str] = {
    # The run
    "n_members": "E, the networks trained (diverged ones included)",
    "n_diverged": "networks whose outputs became non-finite or exceeded the divergence threshold; the limit never "
                  "diverges, so any makes the verdict inconsistent, and statistics leave them out",
    "compare_times": "the times where the verdict is taken (--compare-times)",
    "widths": "the widths N of a sweep",
    # The verdict (docs/statistics.md#the-verdict)
    "smallest_pvalue_by_time": "at each verdict time, the smallest p-value of the four tests (mean, Mahalanobis KS, "
                               "marginal KS with Holm, energy) of the ensemble against the predicted Gaussian",
    "per_test_threshold": "the p-value below which one test rejects: the level divided by the number of tests "
                          "and times (Bonferroni)",
    "min_pvalue": "the smallest p-value over every test and verdict time",
    "mahalanobis_ks_pvalue": "p-value of the Kolmogorov–Smirnov test of the members' Mahalanobis distances "
                             "under the predicted Gaussian",
    # Effect sizes at the last verdict time
    "mean_error": "largest |ensemble mean − predicted mean| over the points (output units)",
    "mean_error_z": "the largest mean error in standard errors of the ensemble mean (its noise level is 1)",
    "cov_rel_error": "‖ensemble covariance − predicted covariance‖_F / ‖predicted covariance‖_F",
    "bures_w2": "Bures–Wasserstein distance between the ensemble's Gaussian fit and the prediction (output units)",
    "bures_w2_coupled": "the Bures distance with the initial draw's Monte Carlo noise removed: each network against "
                        "its own limit path (docs/xavier.md#pathwise-coupling)",
    "bures_w2_coupled_noise": "the coupled Bures distance that an exact limit would show at this ensemble size",
    "mean_drift": "finite-width bias of the mean, coupled: the largest mean over members of (network − its own "
                  "limit path) (output units)",
    "mean_drift_z": "the coupled bias in its own standard errors",
    "mean_drift_in_mean_se": "the coupled bias in standard errors of the ensemble mean: its share of mean_error_z",
    "finite_width_effect_z": "the initial law's excess kurtosis (the O(1/N) finite-width effect at t = 0) in "
                             "standard errors",
    "finite_width_kurtosis_excess": "the predicted excess kurtosis κ/N of the output at t = 0",
    "kurtosis_excess_per_width": "κ: the predicted excess kurtosis times the width",
    "kurtosis_se": "standard error of the ensemble's excess kurtosis",
    # Each network against its own path
    "pathwise_max_error": "RMS over members of the largest |network − its own limit path| over points and times "
                          "(the O(N^-1/2) coupling error)",
    # Kernels and the limit's solution
    "kernel_method": "how the limit's kernels were computed (closed form, quadrature, Monte Carlo)",
    "kernel_max_error": "bound on the kernels' numerical error (or their largest Monte Carlo standard error)",
    "kernel_min_eigenvalue": "λ_min of the training kernel (the slowest mode's rate, up to α/M)",
    "kernel_max_eigenvalue": "λ_max of the training kernel (the fastest mode; sets the stable step)",
    "kernel_condition_number": "λ_max / λ_min of the training kernel",
    "kernel_singular": "whether the training kernel is numerically singular (the loss then has a floor)",
    "ntk_min_eigenvalue": "λ_min of the analytic NTK on the training points",
    "ntk_condition_number": "λ_max / λ_min of the analytic NTK on the training points",
    "limit_ode_max_error": "largest difference between the closed-form prediction and diffrax's solution of the "
                           "same ODE (a check of the solver)",
    "loss_decay_rate_bound": "the rate at which the limit's training loss decays at least (α λ_min / M)",
    # Training loss
    "initial_train_loss_limit": "the limit's expected training loss at t = 0",
    "final_train_loss_limit": "the limit's expected training loss at the last time",
    "final_train_loss_ensemble": "the members' mean training loss at the last time",
    "final_train_loss_mean": "the members' mean training loss at the last time",
    "output_mean_final": "the ensemble mean of each output at the last time",
    "output_std_final": "the ensemble standard deviation of each output at the last time",
    "rms_parameter_change_final": "RMS change of all parameters since initialisation, mean over members",
    # Global minimum (xavier)
    "global_min_time": "the time of the global-minimum check",
    "global_min_members": "networks trained to the global-minimum time",
    "global_min_diverged": "of those, networks that diverged",
    "global_min_train_loss_ensemble": "their mean training loss at that time",
    "global_min_train_loss_limit": "the limit's training loss at that time",
    "global_min_loss_ratio_ensemble": "the members' training loss at that time over their initial loss",
    "global_min_loss_ratio_limit": "the limit's training loss at that time over its initial loss",
    # Empirical NTK (deep)
    "kernel_members": "networks whose empirical NTK was recorded",
    "ntk_init_max_abs_z": "largest |mean empirical NTK − analytic NTK| at t = 0, in standard errors",
    "ntk_init_mean_rel_error": "mean over entries of |mean empirical NTK − analytic NTK| / |analytic NTK| at t = 0",
    "ntk_init_spread": "how far one network's NTK is from the analytic one at t = 0 (relative, Frobenius)",
    "ntk_change_final": "‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F at the last time, mean over networks (the lazy-regime measure)",
    # Learning-rate transfer (sweep lr, docs/parameterisations.md#transfer-measured)
    "slope": "sweep lr: the drift s of the optimal base learning rate, α*(n) ∝ n^s (0 when the rate transfers)",
    "optimal_alpha": "per width, the geometric mean over networks of the optimal base learning rate (null: not "
                     "bracketed by the grid of rates)",
    "optimal_log2_alpha": "log₂ of the optimal base learning rate",
    "resolved_widths": "the widths at which every network's optimal rate is bracketed by the grid (those fitted)",
    "min_loss": "per width, the lowest mean training loss over the grid of rates",
    "tolerance": "how far a slope's interval may miss its predicted value and still agree (finite-width terms)",
    "sentence": "the result in one sentence",
}

SUFFIXES: list[tuple[str, str]] = [
    ("_resolution", "whether {base} is resolved: " + RESOLVED_RULE),
    ("_null", "the size {base} has when the limit is exact, at this ensemble size (its noise level)"),
    ("_se", "standard error of {base}"),
    ("_ci", "confidence interval of {base}"),
    ("_noise", "the size {base} shows from noise alone"),
    ("_against", "the predicted values {base} is compared with, and the agreement with each"),
    ("_verdict", "the verdict on {base}"),
]

PREFIXES: list[tuple[str, str]] = [
    ("slope_", "fitted log–log slope of {base} against the width, with its interval (docs/statistics.md)"),
]

FALLBACK = "defined on the command's page of docs/ (see the report's summary)"


def meaning(name: str) -> str:
    """One line saying what the metric ``name`` measures."""
    if name in METRICS:
        return METRICS[name]
    for suffix, text in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            if base == "mean_error":  # mean_error_resolution is about the z-score
                base = "mean_error_z"
            return text.format(base=f"`{base}`")
    for prefix, text in PREFIXES:
        if name.startswith(prefix):
            return text.format(base=f"`{name[len(prefix):]}`")
    return FALLBACK


def explained(name: str) -> bool:
    """Whether ``name`` has its own line or a family's (not the fallback)."""
    return meaning(name) != FALLBACK


def glossary_markdown() -> str:
    """The text of docs/metrics.md."""
    lines = ["# Report metrics", "",
             "<!-- Generated from jaxlimit/glossary.py by glossary_markdown(); edit that module, not this file. -->",
             "", "What each metric in `report.json` and `report.md` measures. Every report.md links here. "
             "Effect sizes come with their noise level and a label: " + RESOLVED_RULE + ".", "",
             "## Families", "", "| name ends / starts with | meaning |", "| --- | --- |"]
    lines += [f"| `…{s}` | {t.format(base='the metric it extends')} |" for s, t in SUFFIXES]
    lines += [f"| `{p}…` | {t.format(base='the named quantity')} |" for p, t in PREFIXES]
    lines += ["", "## Metrics", "", "| metric | meaning |", "| --- | --- |"]
    lines += [f"| `{k}` | {v} |" for k, v in METRICS.items()]
    lines += ["", "Metrics not listed (those of mean-field, three-layer, teacher–student) are "
              "defined on their command's page: [mean-field](mean-field.md), [three-layer](three-layer.md), "
              "[teacher–student](teacher-student.md).", ""]
    return "\n".join(lines)


__all__ = ["FALLBACK", "METRICS", "PREFIXES", "RESOLVED_RULE", "SUFFIXES", "explained", "glossary_markdown",
           "meaning"]
