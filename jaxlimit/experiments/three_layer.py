"""``jaxlimit three-layer``: three-layer mean-field networks approach their limit (THEORY §4).

Three measurements, all on one task (a two-layer tanh teacher's labels, or
two classes of scikit-learn's digits):

* Width, by coupling. Networks of widths 32 … 4096 (n1 = n2 = n) are trained
  by one-pass SGD with ε ξ1 n1, ε ξ2 n1 n2, ε ξ3 n2; member i at every width is
  the leading sub-block of member i at the widest width and sees the same
  samples. The output gap and weight gap to the widest run should fall like
  n^{-1/2}; the slopes are fitted against n and against n_eff = (1/n − 1/N)^{-1},
  which removes the bias of comparing nested sub-blocks (gap² ∝ 1/n − 1/N).
  The widest network's loss shows global convergence (zero loss for
  deterministic labels).
* Spread across seeds. With full-batch descent (the only randomness is the
  initial draw) the standard deviation of the outputs across seeds falls like
  n^{-1/2}. Under SGD each seed also has its own sample stream, whose O(√ε)
  noise does not shrink with width: the SGD runs' spread levels off and is
  reported beside it.
* Step size, at one width: full-batch descent and SGD against the gradient
  flow of the same network (diffrax), errors ∝ ε and ∝ √ε.

``--degenerate-init`` draws w3 = 0 and E[w2] = 0: the limit then starts at a
stationary point and never leaves it; finite networks escape through their
O(n^{-1/2}) fluctuations after a plateau that lengthens with width, and the
coupling no longer converges like n^{-1/2}. (A zero-mean w2 alone is not
degenerate: with tanh and symmetric w1, H2 = 0 at t = 0 in the limit whatever
E[w2], and learning starts through w3, at a rate ∝ E[w3²].)
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
from matplotlib.figure import Figure

from jaxlimit.data import digits_problem, synthetic_problem
from jaxlimit.experiments.common import (
    add_output_arguments, float_list, int_list, nonnegative_int, positive_float, positive_int,
    require, timed,
)
from jaxlimit.limits.three_layer import (
    output_gaps, run_width_coupling, seed_spread, step_size_refinement, summarize_gaps,
    weight_gaps,
)
from jaxlimit.losses import get_loss
from jaxlimit.models.three_layer import DEGENERATE_INIT, ThreeLayer, ThreeLayerInit
from jaxlimit.report import Report
from jaxlimit.stats import fit_power_law
from jaxlimit.training import Trainer, run_ensemble

NAME = "three-layer"
HELP = "three-layer mean-field networks: width coupling, seeds, step size (THEORY §4)"

MEMBER_BUDGET = 16 * 512**2
"""Members at width n: MEMBER_BUDGET / n², clipped to [--widest-members, --members]."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("problem")
    g.add_argument("--data", choices=["teacher", "digits"], default="teacher",
                   help="a tanh teacher network's labels or digits 0 vs 1 (default: %(default)s)")
    g.add_argument("--points", type=positive_int, default=16, help="training points M (default: 16)")
    g.add_argument("--probes", type=nonnegative_int, default=4, help="probe points Q (default: 4)")
    g.add_argument("--dim", type=positive_int, default=4, help="input dimension for the teacher (default: 4)")
    m = parser.add_argument_group("model")
    m.add_argument("--widths", type=int_list, default=[32, 64, 128, 256, 512, 1024, 2048, 4096],
                   help="widths n = n1 = n2, the widest is the reference (default: 32,...,4096)")
    m.add_argument("--activations", default="tanh,tanh,identity",
                   help="φ1,φ2,φ3 (default: %(default)s)")
    m.add_argument("--init", choices=["uniform", "gaussian"], default="uniform",
                   help="law of w2 and w3; w1 is Gaussian (default: %(default)s)")
    m.add_argument("--w2-mean", type=float, default=0.0, help="mean of w2 (default: 0)")
    m.add_argument("--w2-std", type=float, default=1.0, help="std of w2 (default: 1)")
    m.add_argument("--w3-mean", type=float, default=1.0, help="mean of w3 (default: 1)")
    m.add_argument("--w3-std", type=float, default=1.0, help="std of w3 (default: 1)")
    m.add_argument("--degenerate-init", action="store_true",
                   help="w3 = 0 and E[w2] = 0: the limit's stationary start (overrides the above)")
    t = parser.add_argument_group("training")
    t.add_argument("--eps", type=positive_float, default=0.05, help="step ε; t = kε (default: 0.05)")
    t.add_argument("--xi", type=float_list, default=[1.0, 1.0, 1.0],
                   help="ξ1,ξ2,ξ3 ≥ 0 (default: 1,1,1)")
    t.add_argument("--freeze-third", action="store_true", help="ξ3 = 0: w3 stays at its initial value")
    t.add_argument("--method", choices=["online", "fullbatch"], default="online",
                   help="training of the coupled runs (default: online, the paper's)")
    t.add_argument("--loss", choices=["squared", "huber"], default="squared", help="loss (default: squared)")
    t.add_argument("--t-max", type=positive_float, default=40.0, help="training time (default: 40)")
    t.add_argument("--n-times", type=positive_int, default=20, help="saved times after t=0 (default: 20)")
    e = parser.add_argument_group("ensembles")
    e.add_argument("--members", type=positive_int, default=16,
                   help="seeds at the narrow widths (default: 16)")
    e.add_argument("--widest-members", type=positive_int, default=2,
                   help="seeds at the widest widths, and the coupled pairs per width (default: 2)")
    e.add_argument("--spread-widths", type=int_list, default=[32, 64, 128, 256, 512],
                   help="widths of the full-batch seeds ensembles (default: 32,...,512)")
    e.add_argument("--spread-members", type=positive_int, default=16,
                   help="seeds per width for the spread (default: 16)")
    e.add_argument("--memory-gb", type=positive_float, default=2.0,
                   help="memory budget for one compiled chunk in GB (default: 2)")
    r = parser.add_argument_group("step-size refinement")
    r.add_argument("--refine-width", type=positive_int, default=64, help="width (default: 64)")
    r.add_argument("--refine-eps", type=float_list, default=[0.2, 0.1, 0.05, 0.025],
                   help="steps ε (default: 0.2,0.1,0.05,0.025)")
    r.add_argument("--refine-t", type=positive_float, default=5.0, help="comparison time (default: 5)")
    r.add_argument("--refine-members", type=positive_int, default=4, help="seeds (default: 4)")
    r.add_argument("--no-refinement", action="store_true", help="skip the step-size study")
    add_output_arguments(parser, "report-three-layer")


def _model(args, data) -> ThreeLayer:
    phis = [p.strip() for p in args.activations.split(",")]
    require(len(phis) == 3, f"--activations needs three names φ1,φ2,φ3, got {args.activations!r}")
    require(len(args.xi) == 3, f"--xi needs three numbers ξ1,ξ2,ξ3, got {args.xi}")
    xi = (args.xi[0], args.xi[1], 0.0 if args.freeze_third else args.xi[2])
    law = DEGENERATE_INIT if args.degenerate_init else ThreeLayerInit(
        args.init, 1.0, args.w2_mean, args.w2_std, args.w3_mean, args.w3_std)
    return ThreeLayer(args.widths[0], args.widths[0], data.dim, args.eps, xi, *phis, init_law=law)


def members_per_width(widths, most: int, fewest: int) -> list[int]:
    """MEMBER_BUDGET / n² seeds, clipped to [fewest, most]: equal work per width below the cap."""
    return [int(np.clip(MEMBER_BUDGET // (n * n), fewest, max(most, fewest))) for n in widths]


def _fit(x, y) -> dict:
    """A power-law fit over the finite positive points, or NaNs with fewer than two."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return {"slope": float("nan"), "slope_ci": [float("nan")] * 2, "intercept": float("nan")}
    return fit_power_law(x[ok], y[ok]).as_dict()


def _escape_times(times, loss) -> list:
    """First saved time at which the mean loss is at most half its initial value."""
    out = []
    for curve in loss:
        hit = np.nonzero(curve <= 0.5 * curve[0])[0]
        out.append(float(times[hit[0]]) if hit.size else float("nan"))
    return out


def run(args: argparse.Namespace) -> Report:
    timing: dict = {}
    require(len(args.widths) >= 3, "--widths needs at least three widths (two gaps to fit)")
    require(args.points + args.probes >= 1, "need at least one training point")
    if args.data == "digits":
        data = digits_problem(args.points, args.probes, seed=args.seed)
    else:
        data = synthetic_problem(jax.random.key(args.seed + 7919), args.points, args.dim,
                                 args.probes, target="teacher")
    model = _model(args, data)
    loss = get_loss(args.loss)
    trainer = Trainer(method=args.method, loss=loss)
    times = np.round(np.linspace(0.0, args.t_max, args.n_times + 1), 12)
    require(model.steps_to(args.t_max) >= 1, f"--t-max {args.t_max} is less than one step {args.eps}")
    budget = int(args.memory_gb * 1e9)
    widths = list(args.widths)
    members = members_per_width(widths, args.members, args.widest_members)
    warnings: list[str] = []

    with timed(timing, "coupling"):
        coupling = run_width_coupling(model, data, trainer, widths=widths, times=times,
                                      members=members, seed=args.seed, memory_budget=budget,
                                      progress=not args.no_progress)
    for n, r in zip(widths, coupling.results):
        if r.n_diverged:
            warnings.append(f"width {n}: {r.n_diverged} of {r.n_members} members diverged and "
                            "are excluded from every statistic")
    out_gaps, w_gaps = output_gaps(coupling), weight_gaps(coupling)
    out_gap, w_gap = summarize_gaps(out_gaps), summarize_gaps(w_gaps)
    n_eff = coupling.effective_widths()
    fit_out, fit_out_nested = _fit(widths[:-1], out_gap), _fit(n_eff, out_gap)
    fit_w, fit_w_nested = _fit(widths[:-1], w_gap), _fit(n_eff, w_gap)

    mean_loss = np.array([r.finite().loss.mean(0) if r.finite().n_members else
                          np.full(len(times), np.nan) for r in coupling.results])
    widest = coupling.widest.finite()
    final_loss_ratio = (float(np.mean(widest.loss[:, -1]) / np.mean(widest.loss[:, 0]))
                        if widest.n_members else float("nan"))
    sgd_spread = np.array([np.nanmax(seed_spread(r)[0]) if r.n_members > 1 else np.nan
                           for r in coupling.results])

    with timed(timing, "spread"):
        spread, loss_spread = [], []
        for n in args.spread_widths:
            r = run_ensemble(model.replace(n1=n, n2=n), data, Trainer(method="fullbatch", loss=loss),
                             times=times, n_members=args.spread_members, seed=args.seed,
                             memory_budget=budget,
                             progress=not args.no_progress)
            if r.n_diverged:
                warnings.append(f"spread, width {n}: {r.n_diverged} members diverged (excluded)")
            s, ls = seed_spread(r)
            spread.append(float(np.max(s)))
            loss_spread.append(float(np.max(ls)))
    fit_spread = _fit(args.spread_widths, spread)
    fit_loss_spread = _fit(args.spread_widths, loss_spread)

    refinement = {}
    if not args.no_refinement:
        with timed(timing, "refinement"):
            base = model.replace(n1=args.refine_width, n2=args.refine_width)
            for method in ("fullbatch", "online"):
                s = step_size_refinement(base, data, epsilons=args.refine_eps, t_max=args.refine_t,
                                         method=method, n_members=args.refine_members,
                                         seed=args.seed, loss=loss)
                refinement[method] = (s, _fit(s.epsilons, s.rms_gaps()))

    metrics = {
        "widths": widths,
        "members_per_width": members,
        "n_diverged": [r.n_diverged for r in coupling.results],
        "output_gap": out_gap,
        "weight_gap": w_gap,
        "slope_output_gap": fit_out["slope"],
        "slope_output_gap_ci": fit_out["slope_ci"],
        "slope_output_gap_nested": fit_out_nested["slope"],
        "slope_output_gap_nested_ci": fit_out_nested["slope_ci"],
        "slope_weight_gap": fit_w["slope"],
        "slope_weight_gap_ci": fit_w["slope_ci"],
        "slope_weight_gap_nested": fit_w_nested["slope"],
        "slope_weight_gap_nested_ci": fit_w_nested["slope_ci"],
        "initial_loss": mean_loss[:, 0],
        "final_loss": mean_loss[:, -1],
        "final_loss_ratio": final_loss_ratio,
        "escape_time": _escape_times(times, mean_loss),
        "spread_widths": list(args.spread_widths),
        "output_spread": spread,
        "loss_spread": loss_spread,
        "spread_slope": fit_spread["slope"],
        "spread_slope_ci": fit_spread["slope_ci"],
        "loss_spread_slope": fit_loss_spread["slope"],
        "loss_spread_slope_ci": fit_loss_spread["slope_ci"],
        "sgd_output_spread": sgd_spread,
    }
    for method, (s, fit) in refinement.items():
        metrics[f"refine_{method}_eps"] = s.epsilons
        metrics[f"refine_{method}_gap"] = s.rms_gaps()
        metrics[f"refine_{method}_slope"] = fit["slope"]
        metrics[f"refine_{method}_slope_ci"] = fit["slope_ci"]

    verdict = {
        "output_gap_rate": (f"slope {fit_out['slope']:.3f} is within ±0.2 of -1/2"
                            if abs(fit_out["slope"] + 0.5) <= 0.2 else
                            f"slope {fit_out['slope']:.3f} is not within ±0.2 of -1/2"),
        "global_convergence": (f"widest loss fell to {final_loss_ratio:.2%} of its initial value"
                               + (" (below 1%)" if final_loss_ratio < 0.01 else " (not below 1%)")),
    }
    config = {
        "model": model.replace(n1=widths[-1], n2=widths[-1]).describe(),
        "trainer": trainer.describe(),
        "dataset": data.name,
        "n_train": data.n_train,
        "n_probe": data.n_probe,
        "times": times.tolist(),
        "seed": args.seed,
        "widths": widths,
        "members_per_width": members,
        "spread": {"widths": list(args.spread_widths), "members": args.spread_members,
                   "method": "fullbatch"},
        "refinement": None if args.no_refinement else {
            "width": args.refine_width, "eps": list(args.refine_eps), "t": args.refine_t,
            "members": args.refine_members},
    }
    figures = _figures(coupling, times, mean_loss, out_gaps, out_gap, w_gap, fit_out, fit_w,
                       args.spread_widths, spread, fit_spread, sgd_spread, refinement)
    summary = [
        f"Three-layer networks ({', '.join(model.describe()['activations'])}; "
        f"{'degenerate' if args.degenerate_init else 'default'} initial law) on {data.name}, "
        f"trained by {args.method} with ε = {args.eps} to t = {args.t_max} at widths "
        f"{widths[0]}–{widths[-1]}; member i at every width is the leading sub-block of member i "
        f"at width {widths[-1]}, fed the same samples.",
        f"Output gap to the widest run ~ n^{fit_out['slope']:.3f} "
        f"(95% CI {fit_out['slope_ci'][0]:.3f} to {fit_out['slope_ci'][1]:.3f}); against "
        f"n_eff = (1/n − 1/N)^-1: n^{fit_out_nested['slope']:.3f}. Weight gap ~ n^{fit_w['slope']:.3f}.",
        f"Widest network: loss {final_loss_ratio:.3%} of its initial value at t = {args.t_max}.",
        f"Full-batch spread across seeds ~ n^{fit_spread['slope']:.3f}; under SGD the spread "
        f"levels off at {np.nanmin(sgd_spread):.3g} (each seed's own sample noise, O(√ε)).",
    ]
    summary.append("Plateau: the mean loss first halves at t = " + ", ".join(
        f"{e:g} (n = {n})" for e, n in zip(metrics["escape_time"], widths))
        + "; a plateau that lengthens with n is the degenerate start's signature.")
    for method, (s, fit) in refinement.items():
        summary.append(f"Step size ({method}, width {s.width}, t = {s.t_max}): gap to gradient "
                       f"flow ~ ε^{fit['slope']:.3f} (expected {1 if method == 'fullbatch' else 0.5}).")
    return Report(experiment=NAME, config=config, metrics=metrics, verdict=verdict, timing=timing,
                  figures=figures, summary=summary, warnings=warnings)


def _fit_line(ax, x, fit, **kw):
    if np.isfinite(fit["slope"]):
        x = np.asarray(x, float)
        ax.plot(x, np.exp(fit["intercept"]) * x ** fit["slope"], "--", **kw)


def _figures(coupling, times, mean_loss, out_gaps, out_gap, w_gap, fit_out, fit_w,
             spread_widths, spread, fit_spread, sgd_spread, refinement) -> dict:
    widths = list(coupling.widths)
    figs = {}

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for n, curve in zip(widths, mean_loss):
        ax1.semilogy(times, curve, label=f"n = {n}")
    ax1.set(xlabel="t", ylabel="training loss (mean over seeds)", title="loss per width")
    ax1.legend(fontsize=7)
    ax2.loglog(widths, mean_loss[:, -1], "o-")
    ax2.set(xlabel="width n", ylabel=f"loss at t = {times[-1]:g}", title="final loss")
    figs["loss"] = fig

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    n = widths[:-1]
    ax1.loglog(n, out_gap, "o", color="C0", label=f"output gap, slope {fit_out['slope']:.2f}")
    _fit_line(ax1, n, fit_out, color="C0")
    ax1.loglog(n, w_gap, "s", color="C1", label=f"weight gap, slope {fit_w['slope']:.2f}")
    _fit_line(ax1, n, fit_w, color="C1")
    ax1.loglog(n, out_gap[0] * (np.asarray(n, float) / n[0]) ** -0.5, ":", color="gray",
               label="n^-1/2")
    ax1.set(xlabel="width n", ylabel=f"gap to width {widths[-1]} (sup over t)",
            title="coupled gap to the widest network")
    ax1.legend(fontsize=8)
    for w, g in zip(n, out_gaps):
        ax2.semilogy(times, np.sqrt(np.nanmean(g**2, axis=0)), label=f"n = {w}")
    ax2.set(xlabel="t", ylabel="output gap (RMS over coupled seeds)", title="output gap over time")
    ax2.legend(fontsize=7)
    figs["gaps"] = fig

    fig = Figure(figsize=(5.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.loglog(spread_widths, spread, "o", color="C0",
              label=f"full batch, slope {fit_spread['slope']:.2f}")
    _fit_line(ax, spread_widths, fit_spread, color="C0")
    ok = np.isfinite(sgd_spread)
    ax.loglog(np.asarray(widths)[ok], sgd_spread[ok], "s-", color="C1", label="SGD (own sample streams)")
    ax.set(xlabel="width n", ylabel="output std across seeds (sup over t)", title="spread across seeds")
    ax.legend(fontsize=8)
    figs["spread"] = fig

    if refinement:
        fig = Figure(figsize=(5.5, 4), layout="constrained")
        ax = fig.subplots()
        for i, (method, (s, fit)) in enumerate(refinement.items()):
            ax.loglog(s.epsilons, s.rms_gaps(), "o", color=f"C{i}",
                      label=f"{method}, slope {fit['slope']:.2f}")
            _fit_line(ax, s.epsilons, fit, color=f"C{i}")
        ax.set(xlabel="step ε", ylabel="gap to gradient flow", title="step-size refinement")
        ax.legend(fontsize=8)
        figs["step_size"] = fig
    return figs
