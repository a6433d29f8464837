"""The glossary of report metrics: what each name in report.json / report.md measures.

``docs/metrics.md`` is generated from this module (:func:`glossary_markdown`; a
test keeps the two equal) and linked from every report.md; a notebook's report
shows each metric's line beside its value. Names are explained whole where
listed in :data:`METRICS`, else by their family (:data:`SUFFIXES`: ``_se``,
``_null``, ``_resolution``, …). Light module: no JAX.
"""

from __future__ import annotations

import re

RESOLVED_RULE = ("“resolved” when the effect exceeds twice the largest of its noise levels (its standard error, "
                 "or the size it has when the limit is exact), else “not resolved at this size” "
                 "(docs/statistics.md)")

METRICS: dict[str, str] = {
    # The run
    "n_members": "E, the networks trained (diverged ones included)",
    "n_diverged": "networks whose outputs became non-finite or exceeded the divergence threshold (per width in a "
                  "sweep); statistics leave them out, and a verdict against a limit, which never diverges, is "
                  "inconsistent if any did",
    "compare_times": "the times where the verdict is taken (--compare-times)",
    "widths": "the widths N of a sweep (those compared)",
    # The verdict (docs/statistics.md#the-verdict)
    "smallest_pvalue_by_time": "at each verdict time, the smallest p-value of the four tests (mean, Mahalanobis KS, "
                               "marginal KS with Holm, energy) of the ensemble against the predicted Gaussian",
    "per_test_threshold": "the p-value below which one test rejects: the level divided by the number of tests "
                          "and times (Bonferroni)",
    "min_pvalue": "the smallest p-value over every test and verdict time",
    "mahalanobis_ks_pvalue": "p-value of the Kolmogorov–Smirnov test of the members' Mahalanobis distances "
                             "under the predicted Gaussian",
    # Effect sizes at the last verdict time
    "mean_error": "largest |ensemble mean − predicted mean| over the points (output units; per width in "
                  "mean-field)",
    "mean_error_z": "the largest mean error in standard errors of the ensemble mean, over the P points (per "
                    "width in mean-field); its noise level is mean_error_z_null",
    "mean_error_z_null": "the noise level of a largest |z| over P points: the value max |z| exceeds as often as "
                         "one |z| exceeds 1 (probability 0.317) when the limit is exact; 1 for one point, about "
                         "√(2 ln P) for many (jaxlimit.stats.nulls.max_abs_z_noise)",
    "cov_rel_error": "‖ensemble covariance − predicted covariance‖_F / ‖predicted covariance‖_F",
    "bures_w2": "Bures–Wasserstein distance between the ensemble's Gaussian fit and the prediction (output units)",
    "bures_w2_coupled": "the Bures distance with the initial draw's Monte Carlo noise removed: each network against "
                        "its own limit path (docs/xavier.md#pathwise-coupling)",
    "bures_w2_coupled_noise": "the coupled Bures distance that an exact limit would show at this ensemble size",
    "mean_drift": "finite-width bias of the mean, coupled: the largest mean over members of (network − its own "
                  "limit path) (output units)",
    "mean_drift_z": "the coupled bias in its own standard errors, at the worst of the P points (noise level "
                    "mean_error_z_null's, for the same P)",
    "mean_drift_in_mean_se": "the coupled bias in standard errors of the ensemble mean: its share of mean_error_z",
    # The 1/n correction of lazy training (docs/corrections.md#during-training)
    "correction_width": "n₀, the width of the networks that estimated the 1/n correction (--correction-width)",
    "correction_networks": "the networks of width n₀ behind the 1/n correction that stayed finite (antithetic pairs)",
    "correction_diverged": "networks of width n₀ left out of the correction (a pair goes if either member diverged)",
    "mean_drift_predicted": "the 1/n theory's mean drift at mean_drift's point and time: the steps' O(dt) offset "
                            "from the flow plus c/n, c estimated at width n₀",
    "mean_drift_explained": "mean_drift / mean_drift_predicted: the share of the measured drift the 1/n correction "
                            "explains (1 when the network is where the 1/n theory says it is)",
    "mean_drift_correction_z": "(mean_drift − mean_drift_predicted) in combined standard errors",
    "corrected_smallest_pvalue_by_time": "smallest_pvalue_by_time against the 1/n-corrected law N(m̄ + c/n, "
                                         "Σ̄ + C/n) instead of the infinite-width one",
    "correction_ntk": "the NTK-fluctuation piece of mean_drift_predicted (each network's own linearised model "
                      "minus its limit path), over n",
    "correction_dntk": "the dNTK piece of mean_drift_predicted (the odd part in the lazy scaling λ), over n",
    "correction_ddntk": "the ddNTK piece of mean_drift_predicted (the even part in λ beyond the linear model), over n",
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
    "rms_parameter_change_final": "RMS change of all parameters since initialisation at the last time, mean over "
                                  "members (per width in mean-field)",
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
    "ntk_change_final": "‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F at the last time, mean over networks (the lazy-regime measure; "
                        "per width in mean-field)",

    # sweep xavier, sweep deep (one kernel-regime comparison per width, then rates in the width)
    "widths_compared": "the widths that had enough finite networks to compare (fewer than two: nothing is fitted)",
    "gaussian_verdicts": "per width, the verdict of the ensemble against the limit's Gaussian (inconsistent when "
                         "any network diverged)",
    "bures_w2_monte_carlo_size": "the Bures distance that exact Gaussian draws of this ensemble size show against "
                                 "the prediction at the last time (RMS over simulated ensembles; output units): "
                                 "what the raw distance measures at any width",
    "slope_pathwise": "fitted log–log slope against the width of the pathwise error (RMS over members of the "
                      "largest |network − its own limit path|); predicted −1/2",
    "slope_bures": "fitted log–log slope against the width of the coupled Bures distance at the last time "
                   "(`bures_w2_coupled`), over every width",
    "slope_bures_resolved": "`slope_bures` over the widths where the coupled distance is resolved (null with "
                            "fewer than two); predicted −1 for mean-zero symmetric c",
    "slope_moments": "fitted log–log slope against the width of the law's Bures distance to the Gaussian at the "
                     "last time beyond its Monte Carlo size, √max(W² − size², 0), over the widths where that "
                     "excess exceeds twice its bootstrap standard error (null with fewer than two)",
    "slope_mean_drift": "fitted log–log slope against the width of the mean drift at t_max at the point where the "
                        "1/n coefficient is largest (sweep deep --correction-width; widths where it exceeds twice "
                        "its SE; the 1/n theory says −1)",
    "slope_ntk_change": "fitted log–log slope against the width of `ntk_change_final` (the kernel arm's relative "
                        "NTK movement)",

    # mean-field (docs/mean-field.md): ensembles per width against the particle-flow limit h̄_t
    "t_max": "the last saved time",
    "limit_outputs_final": "h̄ at the last time: the mean-field limit's output at each point (output units)",
    "limit_train_loss_final": "the mean-field limit's training loss at the last time",
    "limit_particles": "K, the quadrature particles that solve the mean-field limit",
    "limit_discretisation_error": "the stated accuracy of h̄_t: `limit_quadrature_error` + `limit_solver_error` "
                                  "(output units)",
    "limit_quadrature_error": "largest |h̄ from K particles − h̄ from K/2 particles| over times and points (a "
                              "conservative estimate of the quadrature error; output units)",
    "limit_solver_error": "largest |Tsit5 − Dopri8 at 1/100 of the tolerance| on the K/2 particles (output units)",
    "fluctuation_particles": "particles of the quadrature of the influence functions behind the predicted "
                             "covariance C_t",
    "variance_final": "per width, the mean over points of the ensemble's output variance at the last time, "
                      "(1/P) tr Ĉ",
    "variance_slope": "fitted log–log slope of `variance_final` against N (weighted by its standard errors); "
                      "consistent when within 3 standard errors of −1 (the law of large numbers)",
    "mean_gap_rms": "per width, RMS over points of (ensemble mean − h̄) at the last time (output units); its "
                    "noise level, `mean_gap_rms_noise`, is the RMS over points of the ensemble mean's standard error",
    "mean_gap_resolution": "per width, whether `mean_gap_rms` is resolved against `mean_gap_rms_noise`: "
                           + RESOLVED_RULE,
    "cov_rel_error_by_width": "per width, ‖Ĉ_N − C‖_F / ‖C‖_F at the last time, Ĉ_N the covariance of √N (output "
                              "− h̄) and C the predicted one; noise level `cov_rel_error_by_width_null`",
    "scaled_cov_rel_change_two_largest": "‖Ĉ_N − Ĉ_N'‖_F / ‖Ĉ_N'‖_F for the two largest widths N > N' (Ĉ the "
                                         "covariance of √N (output − h̄) at the last time): whether the scaled "
                                         "covariance has stopped changing with N",
    "scaled_cov_rel_change_two_largest_null": "the size `scaled_cov_rel_change_two_largest` has from sampling noise "
                                              "alone when both widths' scaled covariances equal C: √2 × "
                                              "`cov_rel_error_null`",
    "predicted_scaled_variance_final": "the diagonal of C at the last time: the predicted variance of √N (output − "
                                       "h̄) at each point",
    "ensemble_scaled_variance_final": "the diagonal of Ĉ_N at the largest width: the measured variance of √N "
                                      "(output − h̄) at each point",
    "clt_width": "the width whose outputs the CLT verdict compares with N(h̄_t, C_t/N) (the largest compared)",
    "clt_mean_error_z": "per verdict time, the largest |ensemble mean − h̄_t| over points at `clt_width`, in "
                        "standard errors of the ensemble mean",
    "clt_cov_rel_error": "per verdict time, ‖ensemble covariance − C_t/N‖_F / ‖C_t/N‖_F at `clt_width`",
    "clt_smallest_pvalue_by_time": "per verdict time, the smallest p-value of the CLT comparison's tests at "
                                   "`clt_width` (as `smallest_pvalue_by_time`)",
    "clt_per_test_threshold": "the p-value below which one test of the CLT comparison rejects (level over tests "
                              "and times)",
    "clt_min_pvalue": "the smallest p-value of the CLT comparison over its tests and verdict times",
    "clt_mardia_kurtosis_pvalue": "per verdict time, the p-value of Mardia's multivariate kurtosis test at "
                                  "`clt_width` (a normality diagnostic, not part of the verdict)",
    "clt_rejected_at_t0": "whether the CLT comparison rejects already at t = 0, where the predicted law is exact "
                          "(a false alarm of the initial draw, which later times inherit)",
    "clt_verdict_by_width": "the CLT verdict at every width, each against N(h̄_t, C_t/N) at its own N",
    "xavier_n_members": "Xavier (γ = 1/2) networks per width trained beside the mean-field ones "
                        "(--xavier-ensemble)",
    "xavier_widths": "the widths of the Xavier arm with at least two finite networks",
    "xavier_output_sd_final": "per Xavier width, the mean over points of the output's standard deviation across "
                              "networks at the last time (output units)",
    "xavier_rms_parameter_change_final": "per Xavier width, `rms_parameter_change_final` of the Xavier networks",
    "xavier_rms_parameter_change_slope": "fitted log–log slope of `xavier_rms_parameter_change_final` against N",
    "xavier_rms_parameter_change_slope_predicted": "the slope predicted for `xavier_rms_parameter_change_slope`: "
                                                   "−1/2",
    "xavier_rms_parameter_change_slope_agreement": "consistent when `xavier_rms_parameter_change_slope` is within 3 "
                                                   "standard errors of its prediction, else inconsistent",
    "xavier_ntk_change_final": "per Xavier width, `ntk_change_final` of the Xavier networks",
    "xavier_ntk_change_slope": "fitted log–log slope of `xavier_ntk_change_final` against N",
    "xavier_ntk_change_slope_predicted": "the slope predicted for `xavier_ntk_change_slope`: −1 (mean-zero c)",
    "xavier_ntk_change_slope_agreement": "consistent when `xavier_ntk_change_slope` is within 3 standard errors of "
                                         "its prediction, else inconsistent",

    # sweep gamma (docs/mean-field.md#the-gamma-family): spread and bias against N for each γ
    "gammas": "the exponents γ of the family g = N^-γ Σ c σ(w·x)",
    "spread_slopes": "per γ, the fitted log–log slope against N of the spread at the last time, √((1/P) tr Ĉ)",
    "predicted_spread_slopes": "per γ, the asymptotic spread exponent 1/2 − γ",
    "predicted_spread_slope_intervals": "per γ, the range [−1/2, 1/2 − γ] a finite range of widths can show",
    "spread_agreement": "per γ, consistent when the spread slope is within 3 standard errors of its predicted "
                        "range; not resolved at this size when fewer than two widths give a spread",
    "bias_slopes": "per γ, the fitted log–log slope against N of the bias (RMS over points of the ensemble mean "
                   "minus kernel regression from h = 0, initial outputs as control variate) over the widths where "
                   "it is resolved; null with fewer than two",
    "predicted_bias_slopes": "per γ, the predicted bias exponent 2γ − 2",
    "bias_agreement": "per γ, consistent when the bias slope is within 3 standard errors of 2γ − 2; not resolved "
                      "at this size when fewer than two widths resolve the bias",
    "bias_resolved_widths": "per γ, the widths where the bias exceeds twice its noise level (those fitted)",
    "bias_epsilon_exponent_by_width": "per width, k of the resolved biases of the γ < 1 ensembles fitted as ε^k, "
                                      "ε = N^(γ−1) (2 if the mean is even in ε, 1 if not)",
    "bias_epsilon_exponent_se_by_width": "standard error of `bias_epsilon_exponent_by_width`",
    "kernel_limit_final": "the reference of the bias: kernel regression from h = 0 (the Xavier limit's mean) at the "
                          "last time, per point",
    "mean_field_limit_final": "the mean-field limit h̄ at the last time, per point (the γ = 1 reference)",
    "bias_vs_mean_field_limit_slope": "at γ = 1, the fitted log–log slope against N of the bias against the "
                                      "mean-field limit, over the widths where it is resolved; predicted −1",
    "bias_vs_mean_field_limit_agreement": "consistent when `bias_vs_mean_field_limit_slope` is within 3 standard "
                                          "errors of −1; not resolved at this size with fewer than two resolved "
                                          "widths",

    # three-layer (docs/three-layer.md): coupled widths (member i of width n is the leading block of member i
    # of the widest), full-batch spread across seeds, and a proxy of the limit
    "members_per_width": "networks trained at each coupled width",
    "coupled_pairs": "per width but the widest, the members it shares with the widest run (the gaps' sample)",
    "output_gap": "per width n but the widest N, RMS over coupled members of the largest over time of the RMS "
                  "over points of |ŷ_n − ŷ_N| (output units)",
    "weight_gap": "per width n but the widest N, RMS over coupled members of the largest over time of the gap of "
                  "the leading block's weights (each layer's RMS entry difference, squared, averaged over the "
                  "three layers, square-rooted)",
    "slope_output_gap_nested": "fitted log–log slope of `output_gap` against n_eff = (1/n − 1/N)^-1 (verdict "
                               "output_gap_rate; predicted −1/2)",
    "slope_weight_gap_nested": "fitted log–log slope of `weight_gap` against n_eff = (1/n − 1/N)^-1 (verdict "
                               "weight_gap_rate; predicted −1/2)",
    "initial_loss": "per coupled width, the members' mean training loss at t = 0",
    "final_loss": "per coupled width, the members' mean training loss at the last time",
    "final_loss_ratio": "the widest networks' mean final training loss over their mean initial loss (verdict "
                        "global_convergence: below the threshold in report.json's config)",
    "loss_halving_time": "per coupled width, the first saved time at which the mean training loss is at most half "
                         "its initial value (NaN if never)",
    "sgd_output_spread": "per coupled width, under the command's training method, the largest over time of the "
                         "spread across members (RMS over points of the across-member standard deviation)",
    "spread_widths": "the widths of the full-batch spread arm",
    "output_spread": "per spread width, the largest over time of the full-batch spread across seeds (RMS over "
                     "points of the across-member standard deviation; output units)",
    "output_spread_final": "per spread width, the full-batch spread across seeds at the last time",
    "loss_spread": "per spread width, the largest over time of the across-member standard deviation of the "
                   "training loss",
    "spread_slope": "fitted log–log slope of `output_spread` (the sup over t) against n",
    "spread_slope_final": "fitted log–log slope of `output_spread_final` against n (verdict spread_rate; "
                          "predicted −1/2)",
    "loss_spread_slope": "fitted log–log slope of `loss_spread` against n",
    "proxy_width": "the width of the networks that stand in for the limit (the proxy)",
    "proxy_members": "the proxy's finite networks",
    "limit_predicted_spread_final": "per spread width n, the proxy's predicted spread at the last time: RMS over "
                                    "points of the standard deviation of its seed covariance × proxy_width / n",
    "limit_spread_ratio_final": "per spread width, `output_spread_final` over `limit_predicted_spread_final` "
                                "(verdict limit_spread: every ratio within 3 standard errors of 1)",
    "limit_spread_ratio_final_resolution": "per spread width, whether the ratio's departure from 1 is resolved "
                                           "against its standard error: " + RESOLVED_RULE,
    "limit_spread_ratio_initial": "the same ratio at t = 0 (far above 1: the initial spread is a higher order than "
                                  "the prediction's leading 1/n variance)",
    "limit_mean_gap": "per spread width, RMS over points and times of (ensemble mean − proxy mean) (output units); "
                      "its noise level is the RMS of the standard error of that difference (ensemble and proxy)",
    "refine_fullbatch_steps": "the steps ε of the full-batch step-size study",
    "refine_fullbatch_gap": "per step, RMS over members of the RMS over points of |ŷ_ε − ŷ_flow| at the study's "
                            "last time under full-batch descent (output units)",
    "refine_fullbatch_slope": "fitted log–log slope of `refine_fullbatch_gap` against ε (predicted 1)",
    "refine_online_steps": "the steps ε of the online-SGD step-size study",
    "refine_online_gap": "per step, RMS over members of the RMS over points of |ŷ_ε − ŷ_flow| at the study's last "
                         "time under online SGD (output units)",
    "refine_online_slope": "fitted log–log slope of `refine_online_gap` against ε (predicted 1/2)",

    # teacher-student (docs/teacher-student.md): population gradient flow of a ReLU student
    "saddle_value": "the symmetric start's end against the saddle: theory (the saddle's entry value), full_flow "
                    "(mean entry of the full flow's end), reduced_flow (the two-variable flow's end), abs_error "
                    "(the larger difference), newton_step (distance still to travel to a stationary point, its "
                    "noise level), abs_error_resolution and the verdict",
    "saddle_loss": "the population loss at the symmetric saddle",
    "reduced_vs_full_max_deviation": "largest |full flow projected on the symmetric plane − the reduced "
                                     "two-variable flow| over the plane's starts and times (a check of the reduction)",
    "symmetry_breaking_start_distance": "best-permutation distance to W* at the last time of the plane start that "
                                        "breaks the symmetry",
    "noisy_start_reached_teacher": "of the symmetric start plus noise δ (--noise), the runs within the teacher "
                                   "tolerance of W* up to a permutation at the last time: successes, trials, "
                                   "p, standard error, Wilson interval",
    "noisy_start_endings": "the noisy starts that missed W*, counted by ending: local minimum, other stationary "
                           "point, still moving",
    "noisy_start_spurious_losses": "the population losses of the spurious local minima the noisy starts reached",
    "noisy_start_verdict": "inconsistent if any noisy start rests at a spurious local minimum, consistent if every "
                           "one reached W*, else not resolved at this size",
    "escape": "teacher-student: the time spent near the saddle (within `radius` of it) against log(1/δ) for a "
              "student of K units: the saddle's unstable rate λ and 1/λ (the predicted slope), the fitted slope "
              "with its standard error and 95% interval, the relative difference slope·λ − 1 and the interval's "
              "relative widening; committee: the students' escape from the plateau: the ε_g threshold, the "
              "fraction below it by the last α, the median and quartiles of the first α below it, the predicted "
              "ln D/(2λ), and the spacing of the saved α (the times' resolution)",
    "k1": "K = 1, per (d, ε): the start radius, Tian's bound (1 − ε)/2, starts and finite flows, the fraction that "
          "reached w* with its margin over the bound, the margin's standard error (its noise level) and "
          "resolution, runs still moving, the verdict, and the fraction of starts within distance 1 of w* "
          "with its exact probability",
    "k1_failed_solves": "K = 1 flows that failed (non-finite) and are left out",
    "sgd": "SGD with n samples per step: RMS deviation from gradient descent and from the flow per n (with "
           "standard errors), the fitted slope against n (predicted −1/2), and at the largest n the ensemble "
           "mean's largest gap to the flow and to gradient descent in standard errors, each with its resolution",

    # committee (docs/committee.md): online students' order parameters against the ODEs and linear noise
    "eta_max": "η_max: the learning rate above which the perfect student Q = R = T is unstable",
    "asymptotic_rate": "−max Re eig of the ODE's Jacobian at the perfect student Q = R = T at the run's η (per "
                       "unit α; positive: converging)",
    "plateau": "K = M, T = I: the symmetric plateau's ε_g and order parameters at η, its η → 0 value, the escape "
               "rate λ, the predicted length ln D/(2λ), and the ODE's ε_g at the last compared α",
    "noise_floor": "K > M, σ > 0: the ODE's fixed-point ε_g against Goldt et al.'s (σ²η/2π)(L + M/√3), their "
                   "ratio, and whether the fixed point is stable",
    "compared_times": "the α where the CLT verdict is taken (before the plateau's escape)",
    "after_escape": "K = M, T = I, σ > 0: the CLT of the students' (Q, R), each in the teachers' order, against "
                    "the stationary law N(X*, Σ*/D) at the specialised fixed point X* at the last α, taken only "
                    "when every student escaped and the relaxation ln D/(2r) has passed since the last escape "
                    "(else the reason): X*'s ε_g, ln D/(2r), the last escape, the compared α and the comparison",
    "fluctuations": "the CLT verdict of the students' (Q, R) (and v when trained) against N(X̄(α), Σ(α)/D): "
                    "level, times, smallest p-values and each time's comparison",
    "mean_gap_eps_at_compared_times": "per compared α, the students' mean ε_g − the ODE's, its standard error (the "
                                      "noise level), its resolution and the predicted standard deviation of one "
                                      "student",
    "students": "E, the students that stayed finite",
    "observables": "the compared coordinates: ε_g and the entries of Q and R (and v when trained)",
    "simulation": "how the students were simulated",
    "second_layer": "--alpha-v > 0: the second layer's η_v and v(0), and per unit the students' mean v (with its "
                    "standard error) against the ODE's at the compared α and at the last α (after the plateau's "
                    "escape the ODE from the symmetric mean start stays on the plateau: a gap there is expected)",

    # feature-learning (docs/feature-learning.md): μP networks against the DMFT limit to O(1/N)
    "mean_error_z_infinite_width_mean": "the largest mean error in standard errors against the infinite-width "
                                        "DMFT mean alone, without its O(1/N) shift",
    "variance_ratio_last": "per point, the ensemble's output variance over the predicted one at the last verdict "
                           "time (predicted 1)",
    "variance_ratio_last_resolution": "per point, whether the variance ratio's departure from 1 is resolved "
                                      "against its standard error: " + RESOLVED_RULE,
    "dmft_ntk_change_final": "‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F of the DMFT's NTK at the last time",
    "lazy_ntk_change_final": "the same for the lazy (kernel) limit: 0, its NTK does not move",
    "ntk_mean_change_final": "‖Θ̄_t − Θ̄_0‖_F / ‖Θ̄_0‖_F at the last time, Θ̄ the kernel arm's mean empirical NTK",
    "ntk_networks_change_final": "each network's own ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F at the last time, mean over the "
                                 "kernel arm",
    "ntk_max_abs_z_final": "largest |mean empirical NTK − DMFT NTK| over entries at the last time, in standard "
                           "errors of the mean",
    # feature-learning at depth ≥ 2 or with a nonlinear φ: the deep DMFT's mean alone
    "covariance_compared": "whether the outputs' covariance is compared: false at depth ≥ 2 or with a nonlinear φ, "
                           "where the DMFT's O(1/N) finite-width covariance is not implemented (the verdict is on "
                           "the mean alone)",
    "dmft_exact": "whether the DMFT was solved exactly (φ = identity) or by sampling its single-site process (then "
                  "with a Monte Carlo standard error)",
    "dmft_mean_se_max": "the largest Monte Carlo standard error of the DMFT mean over points and saved times (0 when "
                        "solved exactly); it enters each z in quadrature with the ensemble's",
    "largest_mean_error_z": "the largest |ensemble mean − predicted mean| / SE over the points and the compared times",
    "mean_error_last": "largest |ensemble mean − DMFT mean| over the points at the last compared time (output units)",
    "mean_gap_point": "the point whose |ensemble mean − DMFT mean| at t_max a sweep fits against the width: the one "
                      "most resolved at the smallest width",
    "verdicts": "per width, the verdict against the limit",

    # coord-check (docs/parameterisations.md): coordinate sizes after a few steps against the width
    "lr": "η, the base learning rate (layer l trains at η n^-c_l)",
    "stable": "whether the parameterisation predicts no growing exponent (else its exponents are judged at the "
              "first step only)",
    "predicted_exponents": "per quantity (activation, change, update) and layer, the exponent range of n the "
                           "declared parameterisation predicts after one step",
    "parameterisation_exponents": "the declared parameterisation's width exponents (a, b, c) per input, hidden, "
                                  "output layer and bias",
    "layers": "per layer, quantity and step: the fitted slope of the coordinate size against n with its interval, "
              "the predicted range, and the words against μP and against the parameterisation",
    "first_problem_layer": "the first layer (forward order, earliest step) whose change resolvedly grows or "
                           "vanishes with n; null if none",
    "first_problem": "what that layer does: \"blows up\" or \"freezes\"",
    "first_problem_sentence": "the same in words, with the slope and its interval",
    "n_slopes": "the fitted slopes (steps × layers × quantities)",
    "n_slopes_inconsistent_with_mup": "slopes whose word against μP is not consistent",
    "n_slopes_inconsistent_with_parameterisation": "slopes inconsistent with the declared parameterisation's "
                                                   "predicted range",

    # sweep lr (docs/parameterisations.md#transfer-measured): the optimal learning rate against the width
    "slope": "the drift s of the optimal base learning rate, α*(n) ∝ n^s (0 when the rate transfers)",
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

SECTIONS: dict[str, str] = {
    "n_members": "Shared by the commands (first used by ensemble, xavier and deep)",
    "widths_compared": "sweep xavier, sweep deep",
    "t_max": "mean-field ([docs](mean-field.md))",
    "gammas": "sweep gamma ([docs](mean-field.md#the-gamma-family))",
    "members_per_width": "three-layer ([docs](three-layer.md))",
    "saddle_value": "teacher-student ([docs](teacher-student.md))",
    "eta_max": "committee ([docs](committee.md))",
    "mean_error_z_infinite_width_mean": "feature-learning ([docs](feature-learning.md))",
    "lr": "coord-check ([docs](parameterisations.md))",
    "slope": "sweep lr ([docs](parameterisations.md#transfer-measured))",
}
"""docs/metrics.md's headings: each starts at the named metric of :data:`METRICS` (a metric several
commands report is listed once, under the first)."""

PER_K = ("_K<k>", "{base} for K = k: a student of K ReLU units learning the teacher W* = I_K (teacher-student)")
"""Teacher-student names end in the student's K; the rest of the name is explained as usual."""

FALLBACK = "defined on the command's page of docs/ (see the report's summary)"


def meaning(name: str) -> str:
    """One line saying what the metric ``name`` measures."""
    if name in METRICS:
        return METRICS[name]
    per_k = re.fullmatch(r"(.+)_K(\d+)", name)
    if per_k and meaning(per_k[1]) != FALLBACK:
        return f"{meaning(per_k[1])} (for K = {per_k[2]})"
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
    lines += [f"| `…{PER_K[0]}` | {PER_K[1].format(base='the metric it extends')} |"]
    lines += ["", "## Metrics"]
    for k, v in METRICS.items():
        if k in SECTIONS:
            lines += ["", f"### {SECTIONS[k]}", "", "| metric | meaning |", "| --- | --- |"]
        lines.append(f"| `{k}` | {v} |")
    lines += ["", "Each command's page in docs/ says how its metrics enter its verdicts.", ""]
    return "\n".join(lines)


__all__ = ["FALLBACK", "METRICS", "PER_K", "PREFIXES", "RESOLVED_RULE", "SECTIONS", "SUFFIXES", "explained",
           "glossary_markdown", "meaning"]
