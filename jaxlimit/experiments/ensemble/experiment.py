"""``jaxlimit ensemble``: train, then describe the outputs' law over time."""

from __future__ import annotations

import numpy as np

from jaxlimit.experiments.ensemble import figures
from jaxlimit.experiments.ensemble.config import EnsembleConfig
from jaxlimit.experiments.problem import ensemble_options, timed, two_layer_problem
from jaxlimit.report import Report
from jaxlimit.training import rms_parameter_change, run_ensemble


def run(config: EnsembleConfig) -> Report:
    timing: dict = {}
    problem = two_layer_problem(config)
    with timed(timing, "ensemble"):
        result = run_ensemble(problem.model, problem.data, problem.trainer, times=problem.times,
                              observables={"rms_parameter_change": rms_parameter_change},
                              **ensemble_options(config))
    ok = result.finite()
    warnings = []
    if result.n_diverged:
        warnings.append(f"{result.n_diverged} of {result.n_members} members diverged and are "
                        "excluded from every statistic")
    n = ok.n_members
    nan = float("nan")
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "final_train_loss_mean": float(np.mean(ok.loss[:, -1])) if n else nan,
        "final_train_loss_se": float(np.std(ok.loss[:, -1], ddof=1) / np.sqrt(n)) if n > 1 else nan,
        "output_mean_final": np.mean(ok.outputs[:, -1], axis=0) if n else [],
        "output_std_final": np.std(ok.outputs[:, -1], axis=0) if n else [],
        "rms_parameter_change_final": float(np.mean(ok.observables["rms_parameter_change"][:, -1]))
        if n else nan,
    }
    tables, figs = {}, {}
    if n:
        mean, sd = ok.outputs.mean(axis=0), ok.outputs.std(axis=0, ddof=1) if n > 1 else np.zeros_like(ok.outputs[0])
        t_idx, p_idx = np.meshgrid(np.arange(len(ok.times)), np.arange(mean.shape[1]), indexing="ij")
        tables["outputs_by_time"] = {
            "t": ok.times[t_idx.ravel()], "point": p_idx.ravel(),
            "kind": np.where(p_idx.ravel() < problem.data.n_train, "train", "probe"),
            "mean": mean.ravel(), "sd": sd.ravel(), "se_of_mean": sd.ravel() / np.sqrt(n),
        }
        tables["loss_by_time"] = {"t": ok.times, "mean": ok.loss.mean(axis=0),
                                  "q10": np.quantile(ok.loss, 0.1, axis=0), "q90": np.quantile(ok.loss, 0.9, axis=0)}
        figs["ensemble"] = figures.ensemble_figure(ok, problem)
    return Report(
        experiment="ensemble", metrics=metrics,
        config={"ensemble": {k: result.config[k] for k in ("program", "lanes", "trained_on_devices",
                                                            "trained_by_processes")}}, timing=timing, figures=figs, tables=tables,
        arrays={"outputs": result.outputs, "loss": result.loss, "times": result.times,
                "diverged": result.diverged},
        warnings=warnings,
        summary=[f"{result.n_members} networks of width {problem.model.width} (γ = {problem.model.gamma}, "
                 f"{problem.model.activation.name}) trained by {problem.trainer.method} to t = {config.t_max:g} "
                 f"on {problem.data.name}."],
    )
