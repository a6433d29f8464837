"""Figures of ``jaxlimit xavier`` beyond the shared comparison plots (:mod:`jaxlimit.figures`)."""

from __future__ import annotations

import numpy as np

from jaxlimit.figures import ENSEMBLE_COLOUR, LIMIT_COLOUR, TARGET_COLOUR, new_figure, run_title, styled


@styled
def loss_figure(ok, loss_limit, long_run, conditioning, facts):
    fig, axes = new_figure(1, 2 if long_run else 1, panel=(4.6, 3.4))
    ax = axes[0]
    ax.fill_between(ok.times, np.quantile(ok.loss, 0.1, axis=0), np.quantile(ok.loss, 0.9, axis=0),
                    color=ENSEMBLE_COLOUR, alpha=0.2, label="ensemble, 10–90 % of members")
    ax.plot(ok.times, ok.loss.mean(axis=0), color=ENSEMBLE_COLOUR, lw=2, label="ensemble mean")
    ax.plot(ok.times, loss_limit, "--", color=LIMIT_COLOUR, label="limit: expected loss")
    ax.set(xlabel="training time t", ylabel="training loss ½ mean (y − h)²", yscale="log", title="training loss")
    ax.legend()
    if long_run:
        ax = axes[1]
        t, members = long_run.times, long_run.loss_members
        for row in members:
            ax.plot(t, row, color=ENSEMBLE_COLOUR, lw=0.5, alpha=0.3)
        ax.plot(t, members.mean(axis=0), color=ENSEMBLE_COLOUR, lw=2, label=f"{len(members)} networks (mean)")
        ax.plot(t, long_run.loss_limit, "--", color=LIMIT_COLOUR, label="limit: expected loss")
        bound = long_run.loss_limit[0] * np.exp(-conditioning.loss_decay_rate * t)
        ax.plot(t, bound, ":", color=TARGET_COLOUR, lw=1.2,
                label=r"bound $L_0\, e^{-2\alpha\lambda_{\min}(A)\, t/M}$")
        ax.set(xlabel="training time t", ylabel="training loss", yscale="log",
               title="global minimum: the loss goes to zero")
        ax.legend()
    fig.suptitle(run_title("Training loss against the Xavier limit", **facts))
    return fig


