"""Two-layer linear μP networks against the DMFT limit (docs/feature-learning.md#what-is-measured).

One training point with |x|²/D = 1, y = 1, and one test point (D = 4), γ₀ = 1, η = 1. At widths
100, 300 and 1000, E = 2000 networks are trained by the engine's full-batch gradient descent
(dt = 0.001, float64) and compared at t = 0.5, 1, 2 with
  * the infinite-width DMFT mean (z of the ensemble mean), and with the mean plus its O(1/N) shift;
  * N · Var f(t) against the linear propagation of the initial fluctuations (ratio ± SE);
  * the pathwise gap (RMS over members of |f − own DMFT path|), fitted as a power of N.

    PYTHONPATH=$PWD python benchmarks/dmft_two_layer_linear.py [--members 2000] [--widths 100,300,1000]
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxlimit.data import make_dataset  # noqa: E402
from jaxlimit.limits.dmft import dmft_limit  # noqa: E402
from jaxlimit.models.feature_mlp import FeatureMLP  # noqa: E402
from jaxlimit.stats import fit_power_law  # noqa: E402
from jaxlimit.training import Trainer, run_ensemble  # noqa: E402

X = np.array([[1.0, 1.0, -1.0, 1.0]])
XT = np.array([[1.0, -1.0, 0.5, 0.0]])
TIMES = np.array([0.0, 0.5, 1.0, 2.0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=2000)
    ap.add_argument("--widths", default="100,300,1000")
    ap.add_argument("--gamma0", type=float, default=1.0)
    ap.add_argument("--step", type=float, default=0.001)
    a = ap.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    data = make_dataset(X, np.array([1.0]), XT)
    gaps, gap_se = [], []
    print(f"γ₀ = {a.gamma0}, E = {a.members}, dt = {a.step}; points: train (|x|²/D = 1, y = 1), test")
    print("N     t    | z(mean − DMFT)   | z(mean − DMFT − shift) | N·Var ens / N·Var pred (± SE)")
    for n in widths:
        start = time.perf_counter()
        res = run_ensemble(FeatureMLP(n, 4, 1, "identity", a.gamma0, time_step=a.step), data,
                           Trainer(alpha=1.0, method="fullbatch"), times=TIMES, n_members=a.members, seed=n,
                           dtype=jnp.float64)
        out = np.asarray(res.outputs)
        lim = dmft_limit(X, [1.0], XT, depth=1, activation="identity", gamma0=a.gamma0, width=n)
        law, shift = lim.predict(TIMES), np.asarray(lim.mean_correction(TIMES))
        paths = np.asarray(lim.pathwise(out[:, 0], TIMES))
        gap = np.max(np.abs(out - paths), axis=(1, 2))
        gaps.append(float(np.sqrt(np.mean(gap**2))))
        gap_se.append(float(np.std(gap**2, ddof=1) / np.sqrt(len(gap)) / (2 * gaps[-1])))
        for i, t in enumerate(TIMES):
            f = out[:, i]
            se = f.std(0, ddof=1) / np.sqrt(len(f))
            var = np.diag(np.asarray(law.cov[i]))
            c = f - f.mean(0)
            ratio = f.var(0, ddof=1) / var
            rse = np.sqrt(np.mean(c**4, 0) - np.mean(c**2, 0) ** 2) / np.sqrt(len(f)) / np.mean(c**2, 0) * ratio
            z0 = (f.mean(0) - np.asarray(law.mean[i])) / se
            z1 = (f.mean(0) - np.asarray(law.mean[i]) - shift[i]) / se
            print(f"{n:<5d} {t:<4g} | {z0[0]:+6.2f} {z0[1]:+6.2f}  | {z1[0]:+6.2f} {z1[1]:+6.2f}         | "
                  f"{ratio[0]:.3f} ± {rse[0]:.3f}, {ratio[1]:.3f} ± {rse[1]:.3f}   (N·Var pred "
                  f"{n * var[0]:.4g}, {n * var[1]:.4g})")
        print(f"      pathwise gap (RMS of max |f − own DMFT path|): {gaps[-1]:.4g}; "
              f"{time.perf_counter() - start:.0f} s")
    if len(widths) >= 2:
        fit = fit_power_law(np.asarray(widths, float), np.asarray(gaps), y_err=np.asarray(gap_se))
        print(f"pathwise gap ∝ N^{fit.slope:.3f} ± {fit.slope_se:.3f} (expected −1/2)")


if __name__ == "__main__":
    main()
