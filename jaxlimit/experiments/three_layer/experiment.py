"""``jaxlimit three-layer``: problem → coupled, spread and proxy ensembles → limit → comparison → Report.

What each verdict rests on (docs/three-layer.md):

* ``output_gap_rate``, ``weight_gap_rate``: the coupled gaps to the widest
  network against n_eff = (1/n − 1/N)^{-1} (nested sub-blocks: gap² ∝ 1/n −
  1/N); consistent when −1/2 lies in the slope's 95 % interval widened by
  :data:`SLOPE_TOLERANCE` (higher orders over a finite range of widths). The
  gaps use the coupled pairs only (``--widest-ensemble``), so their standard
  errors are rough and the fits are unweighted; the interval comes from the
  scatter of the widths about the line. The widths share their members
  (nested sub-blocks), so the points are correlated and the interval is a
  guide rather than a calibrated 95 %.
* ``global_convergence``: the widest network's mean training loss at t_max is
  below :data:`GLOBAL_LOSS_RATIO` of its initial value (the theorem is about
  t → ∞: a larger ratio says the horizon is short, or the start degenerate).
* ``spread_rate``: the full-batch spread across seeds at t_max against n,
  slope −1/2. Not its sup over t (``spread_slope``, kept for comparison with
  earlier reports): at t = 0 an odd φ1 gives H2 = 0 in the limit and the
  output's spread is O(1/n), so the sup over t mixes two rates.
* ``limit_spread``: the spread of each full-batch ensemble at t_max against
  the proxy limit's predicted spread (its seed covariance × N_p / n, the
  leading order), consistent when every ratio is within 3 standard errors of
  1; the ratios at every time are in ``spread_by_time.csv`` (far above 1 at
  t = 0, for the same reason). The proxy runs at the same
  step as those ensembles, so the comparison is about width alone; the step
  error is the refinement's subject. The ensemble means against the proxy mean
  are reported as resolved or not resolved at this size (the O(1/n) bias of a
  mean-field network's mean against its standard error).
* ``step_size_rate_fullbatch`` / ``_online``: gap to the gradient flow against
  the step, slopes 1 and 1/2.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from jaxlimit.experiments.problem import ensemble_options, saved_times, timed, two_layer_data
from jaxlimit.experiments.three_layer import figures
from jaxlimit.experiments.three_layer.config import ThreeLayerConfig
from jaxlimit.training.three_layer import (
    output_gaps, run_width_coupling, step_size_refinement, summarize_gaps, three_layer_limit, weight_gaps,
)
from jaxlimit.losses import get_loss
from jaxlimit.models.three_layer import three_layer_model
from jaxlimit.report import Report
from jaxlimit.stats import Estimate, PowerLawFit, fit_valid_points, ratio_of_means, seed_spread, spread_ratio
from jaxlimit.stats.verdict import CONSISTENT, INCONSISTENT, agreement, resolution, slope_agreement
from jaxlimit.training import Trainer, run_ensemble

SLOPE_TOLERANCE = 0.1
"""A rate verdict is consistent when the predicted slope lies in the fitted interval widened by this much."""

GLOBAL_LOSS_RATIO = 0.01
"""``global_convergence``: the widest network's final loss below this fraction of its initial loss."""

PARAMETERISATION = "mean field, 3 layers"


def _engine(config, *stream: int, name: str) -> dict:
    """Engine options of one arm (members' stream, checkpoints, progress) without its size."""
    options = ensemble_options(config, *stream, name=name)
    del options["n_members"]
    return options


@dataclasses.dataclass(frozen=True)
class Coupled:
    """The coupled widths (member i at width n is the leading sub-block of member i at the widest).

    Attributes:
        widths, members, n_diverged: the widths, their members and diverged members.
        pairs: per width below the widest, the coupled pairs with both members finite.
        n_eff: (1/n − 1/N)^{-1} per width below the widest.
        output_gaps, weight_gaps: per such width, each pair's gap to the widest network over time.
        out, w: the RMS over pairs of the sup over t of those gaps, per width.
        fit_out, fit_out_nested, fit_w, fit_w_nested: their power-law fits against n and n_eff
            (None with fewer than two usable points).
        mean_loss: the finite members' mean training loss per width over time, (widths, T).
        loss_ratio: the widest network's final over initial mean loss.
        halving_time: per width, the first saved time the mean loss is at most half its start.
        sgd_spread, sgd_spread_final: the spread across seeds (sup over t, and at t_max) per width.
    """

    widths: list
    members: list
    pairs: list
    n_diverged: list
    n_eff: np.ndarray
    output_gaps: list
    weight_gaps: list
    out: list
    w: list
    fit_out: PowerLawFit | None
    fit_out_nested: PowerLawFit | None
    fit_w: PowerLawFit | None
    fit_w_nested: PowerLawFit | None
    mean_loss: np.ndarray
    loss_ratio: Estimate
    halving_time: list
    sgd_spread: list
    sgd_spread_final: list


@dataclasses.dataclass(frozen=True)
class Spread:
    """Full-batch spread across seeds against n.

    Attributes:
        widths, members: the spread widths and their finite members.
        per_width: the output spread over time per width (:func:`~jaxlimit.stats.seed_spread`).
        worst, loss_worst: the sup over t of the output and of the loss spread per width.
        final: the output spread at t_max per width.
        fit, fit_final, fit_loss: power-law fits of ``worst``, ``final`` and ``loss_worst`` in n.
    """

    widths: list
    members: list
    per_width: list
    worst: list
    loss_worst: list
    final: list
    fit: PowerLawFit | None
    fit_final: PowerLawFit | None
    fit_loss: PowerLawFit | None


@dataclasses.dataclass(frozen=True)
class LimitRow:
    """One full-batch ensemble against the proxy limit's law at its width, at every saved time.

    Attributes:
        width: n.
        predicted_spread: the proxy's predicted spread (RMS over points of its standard deviation), (T,).
        spread_ratio, spread_ratio_se: the ensemble's spread over the predicted one, with its standard error.
        final_ratio, final_ratio_se, spread_agreement: the same at t_max, and whether it is within
            3 standard errors of 1.
        mean_gap, mean_gap_se: ensemble mean minus proxy mean, (T, P), with standard errors.
        rms_mean_gap, rms_mean_gap_noise, max_mean_gap_z, mean_gap_resolution: its RMS against the
            RMS of its standard errors, its largest size in standard errors, and the word.
    """

    width: int
    predicted_spread: np.ndarray
    spread_ratio: np.ndarray
    spread_ratio_se: np.ndarray
    final_ratio: float
    final_ratio_se: float
    spread_agreement: str
    mean_gap: np.ndarray
    mean_gap_se: np.ndarray
    rms_mean_gap: float
    rms_mean_gap_noise: float
    max_mean_gap_z: float
    mean_gap_resolution: str


class StepRefinement(NamedTuple):
    """One method's step-size study: the study, the RMS gap to the gradient flow per step, and its
    power-law fit in the step (None with fewer than two usable points)."""

    study: object
    gaps: list
    fit: PowerLawFit | None


def run(config: ThreeLayerConfig) -> Report:
    timing: dict = {}
    warnings: list[str] = []
    data = two_layer_data(config)
    loss = get_loss(config.loss)
    trainer = Trainer(method=config.method, loss=loss)
    times = saved_times(config.t_max, config.n_times)
    model = three_layer_model(config, data, max(config.widths))
    stationary = model.starts_stationary(np.asarray(data.x_train))

    with timed(timing, "coupling"):
        coupling = run_width_coupling(model, data, trainer, widths=config.widths, times=times,
                                      members=config.coupled_members(), **_engine(config, name="members-coupling"))
    warnings += _divergence("coupling", coupling.widths, coupling.results)
    coupled = _coupling_summary(config, coupling, times)
    with timed(timing, "spread"):
        spread_runs = _spread_runs(config, data, Trainer(method="fullbatch", loss=loss), times, warnings)
    spread = _spread_summary(config, spread_runs)
    proxy = limit_rows = None
    if config.proxy_ensemble and stationary:
        warnings.append("the initial law is a stationary start of the limit (docs/three-layer.md#the-degenerate-"
                        "start): the limit stays at ŷ = φ3(0) while finite networks leave it, so no proxy describes "
                        "it and the comparison with the limit is skipped")
    elif config.proxy_ensemble:
        with timed(timing, "limit"):
            proxy = _proxy(config, data, loss, times)
        warnings += _divergence("proxy", [config.proxy_width], [proxy.result])
        limit_rows = _limit_comparison(config, spread_runs, spread, proxy)
    refinement = {}
    if config.refine_ensemble:
        with timed(timing, "refinement"):
            refinement = _refinement(config, data, loss, warnings)

    verdict = _verdict(coupled, spread, limit_rows, refinement)
    return Report(
        experiment="three-layer",
        config=_config_extra(config, model, trainer, data, times, stationary),
        metrics=_metrics(config, coupled, spread, limit_rows, proxy, refinement), verdict=verdict, timing=timing,
        figures=_figures(config, data, times, coupling, coupled, spread, spread_runs, proxy, limit_rows, refinement),
        tables=_tables(config, coupling, coupled, spread, limit_rows, spread_runs, proxy, refinement, times),
        arrays=_arrays(coupling, spread_runs, config, proxy, refinement, times),
        summary=_summary(config, data, coupled, spread, limit_rows, refinement, verdict, stationary),
        warnings=warnings,
    )


def _proxy(config, data, loss, times):
    """The proxy limit: full-batch networks of width --proxy-width at the command's step."""
    limit = three_layer_limit(three_layer_model(config, data, min(config.spread_widths)), data,
                              Trainer(method="fullbatch", loss=loss), proxy_width=config.proxy_width,
                              proxy_ensemble=config.proxy_ensemble, times=times,
                              **_engine(config, name="members-proxy"))
    return limit.estimate(times)


def _verdict(coupled: Coupled, spread: Spread, limit_rows, refinement: dict) -> dict:
    verdict = {
        "output_gap_rate": slope_agreement(coupled.fit_out_nested, -0.5, SLOPE_TOLERANCE),
        "weight_gap_rate": slope_agreement(coupled.fit_w_nested, -0.5, SLOPE_TOLERANCE),
        "global_convergence": CONSISTENT if coupled.loss_ratio.value < GLOBAL_LOSS_RATIO else INCONSISTENT,
        "spread_rate": slope_agreement(spread.fit_final, -0.5, SLOPE_TOLERANCE),
    }
    if limit_rows is not None:
        verdict["limit_spread"] = (CONSISTENT if all(r.spread_agreement == CONSISTENT for r in limit_rows)
                                   else INCONSISTENT)
    for method, expected in (("fullbatch", 1.0), ("online", 0.5)):
        if method in refinement:
            verdict[f"step_size_rate_{method}"] = slope_agreement(refinement[method].fit, expected, SLOPE_TOLERANCE)
    return verdict


def _figures(config, data, times, coupling, coupled, spread, spread_runs, proxy, limit_rows, refinement) -> dict:
    facts = dict(widths=list(config.widths), parameterisation=PARAMETERISATION,
                 members=max(config.coupled_members()), data=data.name)
    spread_facts = dict(widths=list(config.spread_widths), parameterisation=PARAMETERISATION,
                        members=config.spread_ensemble, data=data.name)
    figs = {
        "gaps": figures.gaps_figure(coupling, coupled, facts),
        "loss": figures.loss_figure(coupling, coupled, facts),
        "spread": figures.spread_figure(config, times, spread, limit_rows, coupled, spread_facts),
    }
    if limit_rows is not None:
        figs["limit"] = figures.limit_figure(spread_runs, proxy, limit_rows, data.n_train,
                                             spread_facts | {"proxy": f"{config.proxy_width} × {config.proxy_ensemble}"})
    if refinement:
        figs["step_size"] = figures.step_size_figure(refinement, dict(width=config.refine_width,
                                                     parameterisation=PARAMETERISATION,
                                                     members=config.refine_ensemble, data=data.name))
    return figs


def _divergence(arm: str, widths, results) -> list[str]:
    return [f"{arm}, width {n}: {r.n_diverged} of {r.n_members} networks diverged and are excluded from every "
            "statistic" for n, r in zip(widths, results) if r.n_diverged]


def _spread_runs(config, data, fullbatch, times, warnings) -> list:
    """Full-batch ensembles, one independent members' stream per width; the finite members of each."""
    runs = []
    for n in config.spread_widths:
        options = ensemble_options(config, n, name="members-spread") | {"n_members": config.spread_ensemble}
        r = run_ensemble(three_layer_model(config, data, n), data, fullbatch, times=times, **options)
        warnings += _divergence("spread", [n], [r])
        runs.append(r.finite())
    return runs


def _refinement(config, data, loss, warnings) -> dict:
    """Full-batch descent and online SGD at --refine-width against the gradient flow."""
    base = three_layer_model(config, data, config.refine_width)
    out = {}
    for method in ("fullbatch", "online"):
        s = step_size_refinement(base, data, Trainer(method=method, loss=loss), epsilons=config.refine_steps,
                                 t_max=config.refine_t_max, n_members=config.refine_ensemble,
                                 **_engine(config, name="members-refine"))
        gaps = s.rms_gaps()
        out[method] = StepRefinement(s, gaps, fit_valid_points(s.epsilons, [g.value for g in gaps]))
        if np.isnan(s.gaps).any():
            warnings.append(f"step-size study ({method}): {int(np.isnan(s.gaps).sum())} networks diverged (excluded)")
    return out


# Coupling --------------------------------------------------------------------------------


def _halving_time(times, curve) -> float:
    """First saved time at which a mean loss curve is at most half its initial value."""
    hit = np.nonzero(curve <= 0.5 * curve[0])[0]
    return float(times[hit[0]]) if hit.size else float("nan")


def _coupling_summary(config, coupling, times) -> Coupled:
    widths = list(coupling.widths)
    og, wg = output_gaps(coupling), weight_gaps(coupling)
    out, w = summarize_gaps(og), summarize_gaps(wg)
    n, n_eff = np.asarray(widths[:-1], float), coupling.effective_widths()
    finite = [r.finite() for r in coupling.results]
    mean_loss = np.array([f.loss.mean(0) if f.n_members else np.full(len(times), np.nan) for f in finite])
    widest = finite[-1]
    return Coupled(
        widths=widths, members=[r.n_members for r in coupling.results],
        pairs=[coupling.n_coupled(i) for i in range(len(widths) - 1)],
        n_diverged=[r.n_diverged for r in coupling.results], n_eff=n_eff, output_gaps=og, weight_gaps=wg,
        out=out, w=w,
        fit_out=fit_valid_points(n, [e.value for e in out]),
        fit_out_nested=fit_valid_points(n_eff, [e.value for e in out]),
        fit_w=fit_valid_points(n, [e.value for e in w]),
        fit_w_nested=fit_valid_points(n_eff, [e.value for e in w]),
        mean_loss=mean_loss, loss_ratio=ratio_of_means(widest.loss[:, -1], widest.loss[:, 0]),
        halving_time=[_halving_time(times, c) for c in mean_loss],
        sgd_spread=[seed_spread(f.outputs).worst for f in finite],
        sgd_spread_final=[float(seed_spread(f.outputs).per_time[-1]) for f in finite],
    )


# Spread and the limit ----------------------------------------------------------------------


def _spread_summary(config, runs) -> Spread:
    out = [seed_spread(r.outputs) for r in runs]
    loss = [seed_spread(r.loss[..., None]) for r in runs]
    widths = np.asarray(config.spread_widths, float)
    final = [Estimate(float(s.per_time[-1]), float(s.per_time_se[-1]), s.n) for s in out]
    return Spread(
        widths=list(config.spread_widths), members=[r.n_members for r in runs],
        per_width=out, worst=[s.worst for s in out], loss_worst=[s.worst for s in loss], final=final,
        fit=fit_valid_points(widths, [s.worst.value for s in out]),
        fit_final=fit_valid_points(widths, [e.value for e in final]),
        fit_loss=fit_valid_points(widths, [s.worst.value for s in loss]),
    )


def _limit_comparison(config, runs, spread: Spread, proxy) -> list[LimitRow]:
    """Each full-batch ensemble against the proxy limit's law at its width, at every saved time."""
    e_p = proxy.result.n_members - proxy.result.n_diverged
    rows = []
    for n, r, s in zip(config.spread_widths, runs, spread.per_width):
        law = proxy.law(n)
        predicted = np.sqrt(np.mean(np.diagonal(np.asarray(law.cov), axis1=1, axis2=2), axis=-1))  # (T,)
        ratio, ratio_se = spread_ratio(s.per_time, predicted, s.n, e_p)
        x = np.asarray(r.outputs, np.float64)
        gap = x.mean(axis=0) - np.asarray(law.mean)
        gap_se = np.sqrt(x.var(axis=0, ddof=1) / r.n_members + proxy.mean_se**2)
        rms_gap, rms_se = float(np.sqrt(np.mean(gap**2))), float(np.sqrt(np.mean(gap_se**2)))
        rows.append(LimitRow(
            width=n, predicted_spread=predicted, spread_ratio=ratio, spread_ratio_se=ratio_se,
            final_ratio=float(ratio[-1]), final_ratio_se=float(ratio_se[-1]),
            spread_agreement=agreement(float(ratio[-1]), 1.0, float(ratio_se[-1])),
            mean_gap=gap, mean_gap_se=gap_se, rms_mean_gap=rms_gap, rms_mean_gap_noise=rms_se,
            max_mean_gap_z=float(np.max(np.abs(gap) / np.maximum(gap_se, 1e-300))),
            mean_gap_resolution=resolution(rms_gap, rms_se),
        ))
    return rows


# Report pieces ---------------------------------------------------------------------------------


def _values(estimates) -> list[float]:
    return [e.value for e in estimates]


def _ses(estimates) -> list[float]:
    return [e.se for e in estimates]


def _slope(metrics: dict, name: str, fit) -> None:
    metrics[name] = fit.slope if fit else None
    metrics[f"{name}_ci"] = list(fit.slope_ci) if fit else None


def _with_se(metrics: dict, name: str, estimates) -> None:
    metrics[name] = _values(estimates)
    metrics[f"{name}_se"] = _ses(estimates)


def _metrics(config, coupled, spread, limit_rows, proxy, refinement) -> dict:
    m = {"widths": coupled.widths, "members_per_width": coupled.members, "coupled_pairs": coupled.pairs,
         "n_diverged": coupled.n_diverged}
    _with_se(m, "output_gap", coupled.out)
    _with_se(m, "weight_gap", coupled.w)
    for name, fit in (("slope_output_gap", coupled.fit_out), ("slope_output_gap_nested", coupled.fit_out_nested),
                      ("slope_weight_gap", coupled.fit_w), ("slope_weight_gap_nested", coupled.fit_w_nested)):
        _slope(m, name, fit)
    m |= {"initial_loss": coupled.mean_loss[:, 0], "final_loss": coupled.mean_loss[:, -1],
          "final_loss_ratio": coupled.loss_ratio.value, "final_loss_ratio_se": coupled.loss_ratio.se,
          "loss_halving_time": coupled.halving_time}
    _with_se(m, "sgd_output_spread", coupled.sgd_spread)
    m["spread_widths"] = spread.widths
    _with_se(m, "output_spread", spread.worst)
    _with_se(m, "loss_spread", spread.loss_worst)
    _slope(m, "spread_slope", spread.fit)
    _slope(m, "loss_spread_slope", spread.fit_loss)
    _with_se(m, "output_spread_final", spread.final)
    _slope(m, "spread_slope_final", spread.fit_final)
    if limit_rows is not None:
        m |= {
            "proxy_width": config.proxy_width,
            "proxy_members": proxy.result.n_members - proxy.result.n_diverged,
            "limit_predicted_spread_final": [float(r.predicted_spread[-1]) for r in limit_rows],
            "limit_spread_ratio_final": [r.final_ratio for r in limit_rows],
            "limit_spread_ratio_final_se": [r.final_ratio_se for r in limit_rows],
            "limit_spread_ratio_final_resolution": [resolution(r.final_ratio - 1.0, r.final_ratio_se)
                                                    for r in limit_rows],
            "limit_spread_ratio_initial": [float(r.spread_ratio[0]) for r in limit_rows],
            "limit_mean_gap": [r.rms_mean_gap for r in limit_rows],
            "limit_mean_gap_noise": [r.rms_mean_gap_noise for r in limit_rows],
            "limit_mean_gap_resolution": [r.mean_gap_resolution for r in limit_rows],
        }
    for method, r in refinement.items():
        m[f"refine_{method}_steps"] = r.study.epsilons
        _with_se(m, f"refine_{method}_gap", r.gaps)
        _slope(m, f"refine_{method}_slope", r.fit)
    return m


def _config_extra(config, model, trainer, data, times, stationary) -> dict:
    return {
        "model": model.describe(),
        "trainer": trainer.describe(),
        "dataset": data.name,
        "times": times.tolist(),
        "coupled_members_per_width": config.coupled_members(),
        "stationary_start": stationary,
        "limit": None if not config.proxy_ensemble or stationary else {
            "construction": "proxy: full-batch networks of width proxy_width at the command's step; mean = their "
                            "mean, cov at width n = proxy_width × their seed covariance / n",
            "proxy_width": config.proxy_width, "proxy_ensemble": config.proxy_ensemble, "step": config.step},
        "verdict_rules": {
            "rates": f"the predicted slope (-1/2 in n_eff for gaps, -1/2 in n for the spread, 1 and 1/2 in the step) "
                     f"lies in the fitted 95% interval widened by {SLOPE_TOLERANCE}",
            "global_convergence": f"widest network's final/initial mean loss below {GLOBAL_LOSS_RATIO}",
            "spread_rate": "the full-batch spread at t_max against n",
            "limit_spread": "every spread ratio (ensemble / proxy prediction) at t_max within 3 SE of 1",
        },
    }


def _tables(config, coupling, coupled, spread, limit_rows, spread_runs, proxy, refinement, times) -> dict:
    widths = coupled.widths
    k = len(widths) - 1
    by_width = {
        "width": widths, "members": coupled.members, "n_diverged": coupled.n_diverged,
        "coupled_pairs": coupled.pairs + [None],
        "n_eff": list(coupled.n_eff) + [None],
        "output_gap": _values(coupled.out) + [None], "output_gap_se": _ses(coupled.out) + [None],
        "weight_gap": _values(coupled.w) + [None], "weight_gap_se": _ses(coupled.w) + [None],
        "initial_loss": coupled.mean_loss[:, 0], "final_loss": coupled.mean_loss[:, -1],
        "loss_halving_time": coupled.halving_time,
        "sgd_output_spread": _values(coupled.sgd_spread), "sgd_output_spread_se": _ses(coupled.sgd_spread),
    }
    w_grid, t_grid = np.meshgrid(widths[:-1], times, indexing="ij")
    rms_t = lambda gaps: [np.sqrt(np.nanmean(g**2, axis=0)) for g in gaps]  # noqa: E731
    by_time = {"width": w_grid.ravel(), "t": t_grid.ravel(),
               "output_gap_rms": np.concatenate(rms_t(coupled.output_gaps)),
               "weight_gap_rms": np.concatenate(rms_t(coupled.weight_gaps)),
               "mean_loss": coupled.mean_loss[:k].ravel()}
    spread_tab = {"width": spread.widths, "members": spread.members,
                  "output_spread": _values(spread.worst), "output_spread_se": _ses(spread.worst),
                  "loss_spread": _values(spread.loss_worst), "loss_spread_se": _ses(spread.loss_worst)}
    tables = {"coupling_by_width": by_width, "coupling_by_time": by_time, "spread_by_width": spread_tab}
    spread_tab["output_spread_final"] = _values(spread.final)
    spread_tab["output_spread_final_se"] = _ses(spread.final)
    w_grid, t_grid = np.meshgrid(spread.widths, times, indexing="ij")
    tables["spread_by_time"] = {
        "width": w_grid.ravel(), "t": t_grid.ravel(),
        "output_spread": np.concatenate([s.per_time for s in spread.per_width]),
        "output_spread_se": np.concatenate([s.per_time_se for s in spread.per_width])}
    if limit_rows is not None:
        for key in ("final_ratio", "final_ratio_se", "spread_agreement", "rms_mean_gap", "rms_mean_gap_noise",
                    "max_mean_gap_z", "mean_gap_resolution"):
            spread_tab[f"limit_{key}"] = [getattr(r, key) for r in limit_rows]
        for key in ("predicted_spread", "spread_ratio", "spread_ratio_se"):
            tables["spread_by_time"][f"limit_{key}"] = np.concatenate([getattr(r, key) for r in limit_rows])
        cols: dict = {k: [] for k in ("width", "t", "point", "kind", "ensemble_mean", "ensemble_sd", "limit_mean",
                                      "limit_sd", "gap", "gap_se")}
        for n, r, row in zip(spread.widths, spread_runs, limit_rows):
            x = np.asarray(r.outputs, np.float64)
            law = proxy.law(n)
            t_idx, p_idx = np.meshgrid(np.arange(len(times)), np.arange(x.shape[2]), indexing="ij")
            cols["width"].append(np.full(t_idx.size, n))
            cols["t"].append(times[t_idx.ravel()])
            cols["point"].append(p_idx.ravel())
            cols["kind"].append(np.where(p_idx.ravel() < r.n_train, "train", "probe"))
            cols["ensemble_mean"].append(x.mean(0).ravel())
            cols["ensemble_sd"].append(x.std(0, ddof=1).ravel())
            cols["limit_mean"].append(np.asarray(law.mean).ravel())
            cols["limit_sd"].append(np.asarray(law.std).ravel())
            cols["gap"].append(row.mean_gap.ravel())
            cols["gap_se"].append(row.mean_gap_se.ravel())
        tables["limit_by_time"] = {k: np.concatenate(v) for k, v in cols.items()}
    if refinement:
        rows = [(method, e, g.value, g.se, g.n) for method, r in refinement.items()
                for e, g in zip(r.study.epsilons, r.gaps)]
        tables["step_size"] = {name: [row[i] for row in rows]
                               for i, name in enumerate(("method", "step", "gap_rms", "gap_rms_se", "members"))}
    return tables


def _arrays(coupling, spread_runs, config, proxy, refinement, times) -> dict:
    arrays = {"times": times}
    for n, r in zip(coupling.widths, coupling.results):
        arrays[f"coupling_outputs_n{n}"] = r.outputs
        arrays[f"coupling_loss_n{n}"] = r.loss
        arrays[f"coupling_diverged_n{n}"] = r.diverged
    for n, r in zip(config.spread_widths, spread_runs):
        arrays[f"spread_outputs_n{n}"] = r.outputs
        arrays[f"spread_loss_n{n}"] = r.loss
    if proxy is not None:
        arrays["proxy_outputs"] = proxy.result.outputs
        arrays["limit_mean"] = proxy.mean
        arrays["limit_scaled_cov"] = proxy.scaled_cov
    for method, r in refinement.items():
        arrays[f"refine_{method}_steps"] = r.study.epsilons
        arrays[f"refine_{method}_gaps"] = r.study.gaps
    return arrays


def _fit_text(fit, digits: int = 3) -> str:
    if fit is None:
        return "no fit (fewer than two usable points)"
    lo, hi = fit.slope_ci
    return f"{fit.slope:.{digits}f} (95% CI {lo:.{digits}f} to {hi:.{digits}f})"


def _summary(config, data, coupled, spread, limit_rows, refinement, verdict, stationary) -> list[str]:
    widths = coupled.widths
    law = "degenerate (w3 = 0, E[w2] = 0)" if config.degenerate_init else "default" if (
        config.w2_mean, config.w3_mean, config.w3_std) == (0.0, 1.0, 1.0) else "custom"
    ratio = coupled.loss_ratio
    lines = [
        f"Three-layer networks ({config.phi1}, {config.phi2}, {config.phi3}; {law} {config.init} initial law) on "
        f"{data.name}, trained by {config.method} with step {config.step:g} and ξ = "
        f"{','.join(f'{x:g}' for x in config.xi)} to t = {config.t_max:g} at widths {widths[0]}–{widths[-1]}; member i "
        f"at every width is the leading sub-block of member i at width {widths[-1]}, fed the same samples "
        f"({', '.join(str(p) for p in coupled.pairs)} coupled pairs).",
        "",
        f"Output gap to the widest network ∝ n_eff^{_fit_text(coupled.fit_out_nested)} with n_eff = (1/n − 1/N)^-1 "
        f"(against n: {_fit_text(coupled.fit_out)}); predicted −1/2: **{verdict['output_gap_rate']}**.",
        f"Weight gap ∝ n_eff^{_fit_text(coupled.fit_w_nested)} (against n: {_fit_text(coupled.fit_w)}): "
        f"**{verdict['weight_gap_rate']}**.",
        f"Widest network: final/initial mean training loss {ratio.value:.3g} ± {ratio.se:.2g} at t = {config.t_max:g} "
        f"(rule: below {GLOBAL_LOSS_RATIO:g}): global convergence **{verdict['global_convergence']}**.",
        f"Full-batch spread across seeds at t = {config.t_max:g} ∝ n^{_fit_text(spread.fit_final)}: "
        f"**{verdict['spread_rate']}** (its sup over t ∝ n^{_fit_text(spread.fit)}, which mixes the O(1/n) "
        f"initial spread with the n^-1/2 one of trained networks); under "
        f"{config.method} the coupled networks' spread is {coupled.sgd_spread[-1].value:.3g} at width {widths[-1]} "
        f"against {coupled.sgd_spread[0].value:.3g} at width {widths[0]} (each seed's own sample noise, O(√step), "
        "does not shrink with n).",
    ]
    if limit_rows is not None:
        lines.append(
            f"Against the proxy limit (width {config.proxy_width}, {config.proxy_ensemble} full-batch networks; "
            f"cov at width n = its seed covariance × {config.proxy_width}/n): spread ratios at t = {config.t_max:g} "
            + ", ".join(f"{r.final_ratio:.2f} ± {r.final_ratio_se:.2f} (n = {r.width})" for r in limit_rows)
            + f" (predicted 1): **{verdict['limit_spread']}**. At t = 0 the ratios are "
            + ", ".join(f"{r.spread_ratio[0]:.2g}" for r in limit_rows)
            + ": the initial spread is O(1/n) (H2 = 0 in the limit), a higher order than the prediction's leading "
              "1/n variance (docs/three-layer.md#spread-across-seeds). Mean gap to the limit (RMS over points and "
              "times): "
            + ", ".join(f"{r.rms_mean_gap:.2g} vs noise {r.rms_mean_gap_noise:.2g} ({r.mean_gap_resolution})"
                        for r in limit_rows) + ".")
    lines.append("Loss halving time per width: " + ", ".join(
        f"{t:g} (n = {n})" for t, n in zip(coupled.halving_time, widths)) + (
        "; from the stationary start it lengthens with n (docs/three-layer.md#the-degenerate-start)." if stationary
        else "; from a non-degenerate start it does not depend on n."))
    for method, r in refinement.items():
        expected = 1 if method == "fullbatch" else 0.5
        lines.append(f"Step size ({method}, width {r.study.width}, t = {r.study.t_max:g}): gap to the gradient "
                     f"flow ∝ step^{_fit_text(r.fit)} (predicted {expected:g}): **{verdict[f'step_size_rate_{method}']}**.")
    return lines
