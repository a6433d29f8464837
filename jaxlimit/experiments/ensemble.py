"""``jaxlimit ensemble``: train an ensemble of two-layer networks and describe it.

No limit is computed: this is the engine on its own, for any scaling γ,
activation and training method, with the spread of outputs and losses over
time and the count of diverged members.
"""

from __future__ import annotations

import argparse

import numpy as np
from matplotlib.figure import Figure

from jaxlimit.experiments.common import (
    add_output_arguments, add_problem_arguments, build_problem, ensemble_options, timed,
)
from jaxlimit.report import Report
from jaxlimit.training import rms_parameter_change, run_ensemble

NAME = "ensemble"
HELP = "train an ensemble of two-layer networks and report its output distribution"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_problem_arguments(parser, width=256, ensemble=512)
    add_output_arguments(parser, "report-ensemble")


def run(args: argparse.Namespace) -> Report:
    timing: dict = {}
    problem = build_problem(args)
    with timed(timing, "ensemble"):
        result = run_ensemble(problem.model, problem.data, problem.trainer, times=problem.times,
                              observables={"rms_parameter_change": rms_parameter_change},
                              **ensemble_options(args))
    ok = result.finite()
    warnings = []
    if result.n_diverged:
        warnings.append(f"{result.n_diverged} of {result.n_members} members diverged and are "
                        "excluded from every statistic")
    metrics = {
        "n_members": result.n_members,
        "n_diverged": result.n_diverged,
        "final_train_loss_mean": float(np.mean(ok.loss[:, -1])) if ok.n_members else float("nan"),
        "final_train_loss_std": float(np.std(ok.loss[:, -1])) if ok.n_members else float("nan"),
        "output_mean_final": np.mean(ok.outputs[:, -1], axis=0) if ok.n_members else [],
        "output_std_final": np.std(ok.outputs[:, -1], axis=0) if ok.n_members else [],
        "rms_parameter_change_final": float(np.mean(ok.observables["rms_parameter_change"][:, -1]))
        if ok.n_members else float("nan"),
    }
    figures = {}
    if ok.n_members:
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        mean, std = ok.outputs.mean(0), ok.outputs.std(0)
        for j in range(mean.shape[1]):
            line = ax1.plot(ok.times, mean[:, j], label=f"point {j}")[0]
            ax1.fill_between(ok.times, mean[:, j] - std[:, j], mean[:, j] + std[:, j],
                             color=line.get_color(), alpha=0.15)
        ax1.set(xlabel="t", ylabel="output", title="ensemble mean ± std")
        ax2.semilogy(ok.times, ok.loss.mean(0), label="mean")
        ax2.fill_between(ok.times, np.quantile(ok.loss, 0.1, 0), np.quantile(ok.loss, 0.9, 0),
                         alpha=0.2, label="10–90%")
        ax2.set(xlabel="t", ylabel="training loss", title="training loss")
        ax2.legend()
        figures["ensemble"] = fig
    return Report(
        experiment=NAME, config=result.config, metrics=metrics, timing=timing, figures=figures,
        warnings=warnings,
        summary=[f"{result.n_members} networks of width {problem.model.width} "
                 f"(γ = {problem.model.gamma}) trained to t = {args.t_max}."],
    )
