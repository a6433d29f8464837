"""The 1/n corrections at initialisation against Monte Carlo (docs/corrections.md).

    PYTHONPATH=$PWD python benchmarks/finite_width_corrections.py [gap|collapse|all] [--samples N]

gap:      tanh, two inputs, depth 3: the gaps |E q̂ − (K + δK/n)| and |n Var q̂ − V| from the
          exact kernel chain at n = 16..128, with their standard errors; the first should
          shrink like 1/n² (until it reaches the Monte Carlo floor), the second like 1/n.
collapse: relu, no bias, one input: the NTK ratio E Θ̂²/(E Θ̂)² of real networks at equal
          β = L/n, (depth, width) = (4, 32) and (8, 64), with standard errors, next to
          Hanin–Nica's exp(5β) and 1 + 5β, and the excess kurtosis of the output against
          the exact product Π(1 + 5/n).
beta:     the output's excess kurtosis E f⁴/(3(E f²)²) − 1 against β = L/n for L = 1, 2, 4, 8 and
          n = 16..128, one input, from the exact kernel chain: relu without bias (the exact product
          Π(1 + 5/n) − 1, exp(5β) − 1 and 5β beside it) and tanh (the recursion's V/(n K²)); with
          --figure, the plot (does it collapse on β?).
"""

import argparse
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxlimit.limits.corrections import (  # noqa: E402
    exact_kurtosis_ratio, mlp_corrections, ntk_fluctuations, sample_conditional_kernels,
)

X = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.7]])


def gap(samples: int) -> None:
    c = mlp_corrections(X, depth=3, activation="tanh", W_std=1.5, b_std=0.3)
    print("tanh depth 3, W_std 1.5, b_std 0.3; entries (00, 01, 11)")
    print(f"K = {c.nngp[0,0]:.6f} {c.nngp[0,1]:.6f} {c.nngp[1,1]:.6f}; δK = {c.nngp_shift[0,0]:.5f} "
          f"{c.nngp_shift[0,1]:.5f} {c.nngp_shift[1,1]:.5f}; V_(ab)(ab) = {c.vertex[0,0,0,0]:.5f} "
          f"{c.vertex[0,1,0,1]:.5f} {c.vertex[1,1,1,1]:.5f}")
    pairs = [(0, 0), (0, 1), (1, 1)]
    for n in (16, 32, 64, 128):
        t = time.time()
        q = sample_conditional_kernels(jax.random.PRNGKey(n), X, widths=(n,) * 3, activation="tanh",
                                       W_std=1.5, b_std=0.3, n_samples=samples)
        flat = np.stack([q[:, i, j] for i, j in pairs], axis=1)
        mean, se = flat.mean(0), flat.std(0) / np.sqrt(len(flat))
        pred = np.array([c.kernel(n)[i, j] for i, j in pairs])
        plain = np.array([c.nngp[i, j] for i, j in pairs])
        dev = flat - mean
        nvar = n * dev.var(0)
        nvar_se = n * np.sqrt((dev ** 4).mean(0) - dev.var(0) ** 2) / np.sqrt(len(flat))
        v = np.array([c.vertex[i, j, i, j] for i, j in pairs])
        print(f"n={n:4d}  E q̂ − K = {np.round(mean - plain, 5)}  E q̂ − (K+δK/n) = {np.round(mean - pred, 5)} "
              f"± {np.round(se, 5)}   n Var q̂ − V = {np.round(nvar - v, 4)} ± {np.round(nvar_se, 4)}  "
              f"({time.time() - t:.1f}s)")


def collapse(samples: int) -> None:
    x = X[:1]
    for depth, width in ((4, 32), (8, 64)):
        t = time.time()
        f = ntk_fluctuations(jax.random.PRNGKey(depth), x, widths=(width,) * depth, activation="relu",
                             W_std=2 ** 0.5, b_std=0.0, n_networks=samples)
        q = sample_conditional_kernels(jax.random.PRNGKey(depth + 1), x, widths=(width,) * depth,
                                       activation="relu", W_std=2 ** 0.5, b_std=0.0, n_samples=samples)[:, 0, 0]
        q = q / q.mean()
        kurt = np.mean(q ** 2)
        kurt_se = np.std(q ** 2 - 2 * kurt * q) / np.sqrt(len(q))
        print(f"(L, n) = ({depth}, {width}), β = {f.beta:.4f}:  NTK E Θ̂²/(E Θ̂)² = {f.ratio[0]:.4f} ± "
              f"{f.ratio_se[0]:.4f}  [exp(5β) = {np.exp(5 * f.beta):.4f}, 1 + 5β = {1 + 5 * f.beta:.4f}];  "
              f"E Θ̂/Θ − 1 = {f.mean[0,0] / f.ntk[0,0] - 1:+.4f} ± {f.mean_se[0,0] / f.ntk[0,0]:.4f};  "
              f"output E f⁴/3(E f²)² = {kurt:.4f} ± {kurt_se:.4f} (exact {exact_kurtosis_ratio((width,) * depth, 'relu'):.4f})"
              f"  ({time.time() - t:.0f}s)")


def beta(samples: int, figure: str | None) -> None:
    x = X[:1]
    cases = {"relu": (2 ** 0.5, 0.0), "tanh": (1.5, 0.3)}
    rows = []
    for act, (w, b) in cases.items():
        for depth in (1, 2, 4, 8):
            c = mlp_corrections(x, depth=depth, activation=act, W_std=w, b_std=b)
            for width in (16, 32, 64, 128):
                q = sample_conditional_kernels(jax.random.PRNGKey(1000 * depth + width), x, widths=(width,) * depth,
                                               activation=act, W_std=w, b_std=b, n_samples=samples)[:, 0, 0]
                q = q / q.mean()
                excess = np.mean(q ** 2) - 1.0
                se = np.std(q ** 2 - 2 * (excess + 1) * q) / np.sqrt(len(q))
                exact = exact_kurtosis_ratio((width,) * depth, act) - 1.0 if act == "relu" else np.nan
                leading = float(c.excess_kurtosis(width)[0])
                rows.append((act, depth, width, depth / width, excess, se, exact, leading))
                print(f"{act:4s} L = {depth} n = {width:3d} β = {depth / width:.4f}: excess kurtosis {excess:.4f} ± "
                      f"{se:.4f}; 1/n recursion {leading:.4f}" + (f"; exact product {exact:.4f}" if act == "relu" else ""),
                      flush=True)
    if figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, act in zip(axes, cases):
            for depth, colour in zip((1, 2, 4, 8), ("C0", "C1", "C2", "C3")):
                r = [row for row in rows if row[0] == act and row[1] == depth]
                ax.errorbar([row[3] for row in r], [row[4] for row in r], yerr=[2 * row[5] for row in r], fmt="o",
                            color=colour, label=f"L = {depth} (chain, ±2 SE)")
                ax.plot([row[3] for row in r], [row[6] if act == "relu" else row[7] for row in r], "-", color=colour,
                        lw=0.8)
            if act == "relu":
                grid = np.linspace(0, 0.55, 50)
                ax.plot(grid, np.exp(5 * grid) - 1, "k--", lw=0.8, label="exp(5β) − 1")
                ax.plot(grid, 5 * grid, "k:", lw=0.8, label="5β (leading order)")
            ax.set_xlabel("β = L/n")
            ax.set_ylabel("excess kurtosis of the output")
            ax.set_title(f"{act}: lines " + ("the exact product Π(1 + 5/n) − 1" if act == "relu"
                                             else "the 1/n recursion V/(nK²)"), fontsize=9)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(figure, dpi=120)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="?", default="all", choices=["gap", "collapse", "beta", "all"])
    parser.add_argument("--samples", type=int, default=400_000)
    parser.add_argument("--figure", default=None, help="beta: write the plot (png) here")
    args = parser.parse_args()
    if args.which == "beta":
        beta(min(args.samples, 100_000), args.figure)
    if args.which in ("gap", "all"):
        gap(args.samples)
    if args.which in ("collapse", "all"):
        collapse(min(args.samples, 40_000))
