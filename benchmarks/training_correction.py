"""The 1/n correction of lazy training against ensembles of real networks (docs/corrections.md, "During training").

On ``jaxlimit deep``'s default problem (8 training and 2 probe points, d = 8, σ_w = 1.4, σ_b = 0.1,
α = 0.5, dt = 0.05, t = 10) at the chosen depth and activation: the correction's coefficient c is
estimated at each width n₀ of ``--estimate-widths`` (its O(1/n₀) bias shows as their difference);
then at each width n of ``--widths`` an ensemble is trained by the engine and its measured mean
drift (members minus their own gradient-flow paths) at t is set against the predicted one
(steps' offset + c/n, c from the largest n₀), point by point, with the combined z.

    PYTHONPATH=$PWD python benchmarks/training_correction.py [--depth 3] [--activation relu] \
        [--estimate-widths 32,64] [--networks 4096] [--widths 64,128,256,512] [--ensemble 2048]
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from jaxlimit.data import two_layer_data  # noqa: E402
from jaxlimit.experiments.deep.config import DeepConfig  # noqa: E402
from jaxlimit.limits.mlp import mlp_limit  # noqa: E402
from jaxlimit.limits.training_correction import TERMS, mlp_training_correction  # noqa: E402
from jaxlimit.models.mlp import MLP  # noqa: E402
from jaxlimit.stats.coupling import mean_drift  # noqa: E402
from jaxlimit.training import Trainer, run_ensemble  # noqa: E402
from jaxlimit.training.problem import ensemble_options, saved_times  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--activation", default="relu")
    ap.add_argument("--estimate-widths", default="32,64")
    ap.add_argument("--networks", type=int, default=4096)
    ap.add_argument("--widths", default="64,128,256,512")
    ap.add_argument("--ensemble", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figure", default=None, help="write the drift against 1/n (png) here")
    args = ap.parse_args()
    config = DeepConfig(depth=args.depth, activation=args.activation, ensemble=args.ensemble, kernel_ensemble=0,
                        seed=args.seed, no_progress=True)
    data = two_layer_data(config)
    t = config.t_max
    print(f"depth {config.depth}, {config.activation}, σ_w = {config.weight_scale}, σ_b = {config.b_std}, "
          f"α = {config.alpha}, dt = {config.step}, t = {t:g}, P = {data.n_train} + {data.n_probe}", flush=True)

    corr = None
    for n0 in (int(w) for w in args.estimate_widths.split(",")):
        start = time.perf_counter()
        corr = mlp_training_correction(data.x_train, data.y_train, data.x_probe, depth=config.depth,
                                       activation=config.activation, W_std=config.weight_scale, b_std=config.b_std,
                                       learning_rate=config.alpha, time_step=config.step, t_max=t, width=n0,
                                       networks=args.networks, seed=args.seed + 1)
        k = corr.steps([t])[0]
        print(f"\nc at t = {t:g} from {corr.networks} networks of width {n0} ({time.perf_counter() - start:.0f} s):")
        print("  point " + " ".join(f"{p:>14d}" for p in range(corr.shift.shape[1])))
        print("  total " + " ".join(f"{v:+7.3f}±{s:5.3f}" for v, s in zip(corr.shift[k], corr.shift_se[k])))
        for name in TERMS:
            print(f"  {name:5s} " + " ".join(f"{v:+7.3f}±{s:5.3f}" for v, s in
                                           zip(corr.terms[name][k], corr.terms_se[name][k])))
        print("  n·(ΔVar) " + " ".join(f"{v:+7.3f}" for v in np.diagonal(corr.cov_shift[k])), flush=True)

    limit = mlp_limit(data.x_train, data.y_train, data.x_probe, depth=config.depth, activation=config.activation,
                      W_std=config.weight_scale, b_std=config.b_std, learning_rate=config.alpha)
    times = saved_times(config.t_max, config.n_times)
    measured = []
    print(f"\nmeasured drift at t = {t:g} against the prediction (c from width {corr.width}):")
    print(f"{'width':>6} {'point':>5} {'measured':>17} {'predicted':>17} {'z':>6}")
    for n in (int(w) for w in args.widths.split(",")):
        model = MLP((n,) * config.depth, data.dim, config.activation, W_std=config.weight_scale,
                    b_std=config.b_std, time_step=config.step)
        start = time.perf_counter()
        result = run_ensemble(model, data, Trainer(alpha=config.alpha, method="fullbatch"), times=times,
                              **ensemble_options(config)).finite()
        paths = np.asarray(limit.pathwise(result.outputs[:, 0].astype(np.float64), times))
        drift = mean_drift(result.outputs[:, -1], paths[:, -1])
        predicted, predicted_se = corr.drift(times[-1:], n)
        z = (drift.value - predicted[0]) / np.hypot(drift.se, predicted_se[0])
        for p in range(len(z)):
            mark = " <- worst" if p == drift.worst else ""
            print(f"{n:6d} {p:5d} {drift.value[p]:+9.5f}±{drift.se[p]:.5f} {predicted[0][p]:+9.5f}±"
                  f"{predicted_se[0][p]:.5f} {z[p]:+6.2f}{mark}")
        measured.append((n, drift.value, drift.se))
        print(f"  width {n}: {result.n_members} networks, {time.perf_counter() - start:.0f} s; "
              f"χ² of z over points {float(np.sum(z ** 2)):.1f} on {len(z)}", flush=True)
    if args.figure:
        _figure(args.figure, corr, measured, t, config)


def _figure(path, corr, measured, t, config) -> None:
    """Measured drift ± 2 SE against 1/n at the three points with the largest |c|, with c/n (+ the steps'
    offset) as lines: the plot a theorist draws to see whether the bias is 1/n."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = corr.steps([t])[0]
    points = np.argsort(-np.abs(corr.shift[k]))[:3]
    inv = np.linspace(0.0, 1.1 / min(n for n, *_ in measured), 50)
    fig, ax = plt.subplots(figsize=(6, 4))
    for colour, p in zip(("C0", "C1", "C2"), points):
        offset = corr.gd_mean[k, p] - corr.flow_mean[k, p]
        ax.plot(inv, offset + corr.shift[k, p] * inv, color=colour, label=f"point {p}: c/n, c from n₀ = {corr.width}")
        ax.errorbar([1.0 / n for n, *_ in measured], [v[p] for _, v, _ in measured],
                    yerr=[2 * s[p] for *_, s in measured], fmt="o", color=colour)
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_xlabel("1/n")
    ax.set_ylabel(f"mean drift at t = {t:g} (network − its flow path)")
    ax.set_title(f"depth {config.depth} {config.activation}: measured (±2 SE) against the 1/n prediction", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
