"""``jaxlimit sweep lr``: config → learning-rate sweep at every width
(:func:`~jaxlimit.training.transfer.lr_transfer`) → optima, drift, verdict, figures → Report."""

from __future__ import annotations

import math

import numpy as np

from jaxlimit.experiments.problem import timed
from jaxlimit.experiments.sweep_lr import figures
from jaxlimit.experiments.sweep_lr.config import SweepLrConfig
from jaxlimit.report import Report
from jaxlimit.training.transfer import Transfer, lr_transfer


def run(config: SweepLrConfig) -> Report:
    timing: dict = {}
    with timed(timing, "training"):
        result = lr_transfer(config.parameterisation, optimizer=config.optimizer, widths=config.widths,
                             alphas=config.resolve("alphas"), steps=config.steps, seeds=config.ensemble,
                             depth=config.depth, dim=config.dim, batch=config.points, activation=config.activation,
                             seed=config.seed, tolerance=config.tolerance, level=1.0 - config.level)
    metrics = _metrics(result)
    facts = dict(parameterisation=config.parameterisation, depth=config.depth, widths=list(result.widths),
                 members=config.ensemble, optimizer=config.optimizer)
    figs = {"loss_vs_alpha": figures.loss_figure(result, facts),
            "optimal_alpha": figures.optimum_figure(result, facts)}
    warnings = []
    if not result.resolved.all():
        warnings.append("at widths " + ", ".join(str(n) for n, ok in zip(result.widths, result.resolved) if not ok)
                        + " some network's lowest loss lies at an end of the α grid: widen --alphas")
    return Report(experiment="sweep-lr", config={"widths": list(result.widths), "alphas": list(result.alphas)},
                  metrics=metrics, verdict=dict(result.verdict), timing=timing, figures=figs,
                  tables=_tables(result), arrays={"losses": result.losses},
                  summary=_summary(config, result, metrics["min_loss"]), warnings=warnings)


def _metrics(result: Transfer) -> dict:
    fit = result.fit
    log2 = math.log(2.0)
    return {
        "slope": None if fit is None else fit.slope,
        "slope_ci": None if fit is None else list(fit.slope_ci),
        "slope_se": None if fit is None else fit.slope_se,
        "tolerance": result.tolerance,
        "resolved_widths": [n for n, ok in zip(result.widths, result.resolved) if ok],
        "optimal_alpha": [None if not ok else float(a) for a, ok in zip(result.optimum, result.resolved)],
        "optimal_log2_alpha_se": [None if not ok else float(s / log2) for s, ok in
                                  zip(result.optimum_se, result.resolved)],
        "min_loss": [float(result.final[w].mean(axis=0).min()) for w in range(len(result.widths))],
        "sentence": result.sentence(),
        "parameterisation_exponents": result.parameterisation.as_dict(),
    }


def _tables(result: Transfer) -> dict:
    """Tidy rows: each network's optimal log₂ α per width, and every final loss."""
    log2 = math.log(2.0)
    per_seed = {k: [] for k in ("width", "member", "log2_optimal_alpha")}
    for w, n in enumerate(result.widths):
        for s in range(result.log_alpha_star.shape[1]):
            v = result.log_alpha_star[w, s]
            for key, value in zip(per_seed, (n, s, float(v / log2) if np.isfinite(v) else None)):
                per_seed[key].append(value)
    losses = {k: [] for k in ("width", "member", "alpha", "final_loss", "initial_loss")}
    for w, n in enumerate(result.widths):
        for s in range(result.final.shape[1]):
            for k, a in enumerate(result.alphas):
                for key, value in zip(losses, (n, s, a, float(result.final[w, s, k]),
                                               float(result.losses[w, s, k, 0]))):
                    losses[key].append(value)
    return {"optima": per_seed, "losses": losses}


def _summary(config: SweepLrConfig, result: Transfer, min_loss: list) -> list[str]:
    log2 = math.log(2.0)
    return [
        f"Learning-rate sweep of an MLP with {config.depth} hidden layers ({config.activation}) in the "
        f"**{config.parameterisation}** parameterisation trained by {config.optimizer} for {config.steps} steps, "
        f"{len(result.alphas)} base rates α from {min(result.alphas):g} to {max(result.alphas):g}, widths "
        f"{', '.join(str(n) for n in result.widths)}, {config.ensemble} networks each (docs/parameterisations.md).",
        "",
        f"{result.sentence()[0].upper()}{result.sentence()[1:]} (consistent: the interval widened by "
        f"±{config.tolerance:g} covers 0).",
        "",
        "| width | optimal α | log₂ α* ± SE | lowest mean loss |",
        "|---|---|---|---|",
        *[f"| {n} | {'not bracketed' if not ok else f'{a:.3g}'} | "
          f"{'—' if not ok else f'{math.log2(a):+.2f} ± {s / log2:.2f}'} | {m:.3g} |"
          for n, a, s, ok, m in zip(result.widths, result.optimum, result.optimum_se, result.resolved, min_loss)],
    ]
