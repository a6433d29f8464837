"""Figures of ``jaxlimit ensemble``."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import new_figure, run_title, styled


@styled
def ensemble_figure(ok, problem):
    """Mean ± sd of each output over time, and the training loss."""
    fig, (ax1, ax2) = new_figure(1, 2, panel=(4.6, 3.4))
    mean, std = ok.outputs.mean(0), ok.outputs.std(0)
    m = problem.data.n_train
    for j in range(mean.shape[1]):
        label = f"training point {j}" if j < m else f"probe {j - m}"
        line = ax1.plot(ok.times, mean[:, j], label=label, ls="-" if j < m else "--")[0]
        ax1.fill_between(ok.times, mean[:, j] - std[:, j], mean[:, j] + std[:, j], color=line.get_color(),
                         alpha=0.12)
    ax1.set(xlabel="training time t", ylabel="network output g(x)", title="ensemble mean ± sd per point")
    ax1.legend(ncols=2)
    ax2.plot(ok.times, ok.loss.mean(0), label="mean over members")
    ax2.fill_between(ok.times, np.quantile(ok.loss, 0.1, 0), np.quantile(ok.loss, 0.9, 0), alpha=0.2,
                     label="10–90 % of members")
    ax2.set(xlabel="training time t", ylabel="training loss ½ mean (y − g)²", yscale="log",
            title="training loss")
    ax2.legend()
    model = problem.model
    fig.suptitle(run_title("Two-layer ensemble", width=model.width, gamma=model.gamma, members=ok.n_members,
                           data=problem.data.name))
    return fig
