"""The figures behind the deep-kernel work (issue 15): agreement with neural-tangents,
honesty of the quadrature bound, and the cost of a large tiled Gram matrix.

    python benchmarks/deep_kernel_figures.py nt           # max deviation from NT, per category
    python benchmarks/deep_kernel_figures.py quadrature   # quadrature bound vs true error
    python benchmarks/deep_kernel_figures.py large 10000  # a P × P relu Gram matrix, depth 3: time

Run from the repository root (``python -m`` is not needed; the script puts the
root first on the path). Peak memory: wrap the ``large`` run in
``/usr/bin/time -v``. Nothing here is run by the tests.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy import integrate  # noqa: E402

from jaxlimit.limits.gaussian_expectations import gaussian_expectations  # noqa: E402
from jaxlimit.limits.mlp import mlp_kernels, mlp_limit  # noqa: E402


def nt_agreement() -> None:
    ref = json.loads((ROOT / "tests" / "data" / "nt_reference.json").read_text())
    x = np.array(ref["x"])
    worst: dict[str, list[float]] = {}
    for case in ref["kernels"]:
        ours = mlp_kernels(x, x, depth=case["depth"], activation=case["activation"], W_std=case["W_std"],
                           b_std=case["b_std"])
        for mine, key in zip(ours, ("nngp", "ntk")):
            theirs = np.array(case[key])
            scaled = np.max(np.abs(mine - theirs)) / np.max(np.abs(theirs))
            big = np.abs(theirs) > 1e-6 * np.max(np.abs(theirs))
            entry = np.max(np.abs(mine - theirs)[big] / np.abs(theirs)[big])
            w = worst.setdefault(f"kernels {case['activation']}", [0.0, 0.0])
            w[0], w[1] = max(w[0], scaled), max(w[1], entry)
    tr, te = ref["train"], ref["test"]
    y = np.array(ref["y_train"])
    times = np.array([np.inf if t is None else t for t in ref["times"]])
    m = len(tr)
    order = np.argsort(tr + te)
    for case in ref["predictions"]:
        limit = mlp_limit(x[tr], y, x[te], depth=case["depth"], activation=case["activation"], W_std=case["W_std"],
                          b_std=case["b_std"], learning_rate=case["learning_rate"])
        law = limit.predict(times)
        mean, cov = np.asarray(law.mean), np.asarray(law.cov)
        views = {"train": (mean[:, :m], cov[:, :m, :m]), "test": (mean[:, m:], cov[:, m:, m:]),
                 "all": (mean[:, order], cov[:, order][:, :, order])}
        for label, (mu, c) in views.items():
            nt_mu, nt_c = np.array(case[label]["mean"]), np.array(case[label]["cov"])
            w = worst.setdefault(f"predict mean ({label})", [0.0, 0.0])
            w[0] = max(w[0], np.max(np.abs(mu - nt_mu)) / np.max(np.abs(y)))
            w = worst.setdefault(f"predict cov ({label})", [0.0, 0.0])
            w[0] = max(w[0], np.max(np.abs(c - nt_c)) / np.max(np.abs(nt_c[0])))
        for post in case["nngp_posterior"]:
            g = limit.nngp_posterior(math.sqrt(post["noise_variance"])).select(np.arange(m, len(x)))
            w = worst.setdefault("nngp posterior mean", [0.0, 0.0])
            w[0] = max(w[0], np.max(np.abs(np.asarray(g.mean) - post["mean"])) / np.max(np.abs(post["mean"])))
            w = worst.setdefault("nngp posterior cov", [0.0, 0.0])
            w[0] = max(w[0], np.max(np.abs(np.asarray(g.cov) - post["cov"])) / np.max(np.abs(post["cov"])))
    print(f"{'category':28s} max|ours − NT|/scale   max entrywise rel (|NT| > 1e-6 scale)")
    for key, (scaled, entry) in worst.items():
        print(f"{key:28s} {scaled:10.1e}            {entry:10.1e}" if entry else f"{key:28s} {scaled:10.1e}")


def _scipy(f, s11, s12, s22, points=None):
    a, b = math.sqrt(s11), math.sqrt(s22)
    rho = s12 / (a * b)
    sig = math.sqrt(max(1 - rho * rho, 0.0))
    sq = math.sqrt(2 * math.pi)

    def outer(z1):
        pts = None if points is None else [(c - b * rho * z1) / (b * sig) for c in points
                                            if abs((c - b * rho * z1) / (b * sig)) < 12]
        v, _ = integrate.quad(lambda z2: math.exp(-z2 * z2 / 2) / sq * f(b * rho * z1 + b * sig * z2), -12, 12,
                              epsabs=1e-15, epsrel=1e-14, limit=400, points=pts or None)
        return math.exp(-z1 * z1 / 2) / sq * f(a * z1) * v

    return integrate.quad(outer, -12, 12, epsabs=1e-15, epsrel=1e-14, limit=400,
                          points=None if points is None else [c / a for c in points])[0]


def quadrature_honesty() -> None:
    rng = np.random.default_rng(0)
    s11 = rng.uniform(0.3, 3.0, 12)
    s22 = rng.uniform(0.3, 3.0, 12)
    rho = np.concatenate([rng.uniform(-0.99, 0.99, 8), [1 - 1e-9, -(1 - 1e-9), 1.0, -1.0]])
    s12 = rho * np.sqrt(s11 * s22)
    print("callable            piece   max true error   max bound   min bound/error   violations")
    for name, spec in (("relu", jax.nn.relu), ("abs", jnp.abs)):
        exact = gaussian_expectations(name, s11, s12, s22)
        for piece in (2.0, 4.0):
            q = gaussian_expectations(spec, s11, s12, s22, method="quadrature", piece=piece)
            err = np.concatenate([np.abs(np.asarray(q.ff - exact.ff)), np.abs(np.asarray(q.dd - exact.dd))])
            bound = np.concatenate([np.asarray(q.ff_error), np.asarray(q.dd_error)])
            ratio = np.min(bound[err > 0] / err[err > 0]) if np.any(err > 0) else np.inf
            print(f"{name + ' (callable)':18s} {piece:5.1f}   {err.max():14.1e}   {bound.max():9.1e}   "
                  f"{ratio:15.1e}   {int(np.sum(err > bound))}")
    smooth = {
        "tanh": (jnp.tanh, math.tanh, lambda u: 1 - math.tanh(u) ** 2),
        "tanh(u)+0.1u²": (lambda u: jnp.tanh(u) + 0.1 * u**2, lambda u: math.tanh(u) + 0.1 * u * u,
                          lambda u: 1 - math.tanh(u) ** 2 + 0.2 * u),
        # steep: the coarse rule has real errors here, which the bound must cover
        "tanh(6u)+0.1u²": (lambda u: jnp.tanh(6 * u) + 0.1 * u**2, lambda u: math.tanh(6 * u) + 0.1 * u * u,
                           lambda u: 6 * (1 - math.tanh(6 * u) ** 2) + 0.2 * u),
    }
    idx = [0, 3, 8, 9]  # generic pairs and the nearly (anti)parallel ones
    for name, (jf, f, df) in smooth.items():
        refs = [(_scipy(f, s11[i], s12[i], s22[i]), _scipy(df, s11[i], s12[i], s22[i])) for i in idx]
        for piece in (2.0, 4.0):
            q = gaussian_expectations(jf, s11[idx], s12[idx], s22[idx], piece=piece)
            err = np.array([abs(float(q.ff[k]) - r[0]) for k, r in enumerate(refs)]
                           + [abs(float(q.dd[k]) - r[1]) for k, r in enumerate(refs)])
            bound = np.concatenate([np.asarray(q.ff_error), np.asarray(q.dd_error)])
            ratio = np.min(bound[err > 0] / err[err > 0]) if np.any(err > 0) else np.inf
            print(f"{name:18s} {piece:5.1f}   {err.max():14.1e}   {bound.max():9.1e}   {ratio:15.1e}   "
                  f"{int(np.sum(err > bound))}   (scipy reference)")


def large(p: int) -> None:
    x = np.random.default_rng(0).normal(size=(p, 32))
    start = time.perf_counter()
    nngp, ntk = mlp_kernels(x, x, depth=3, activation="relu", W_std=1.4, b_std=0.1)
    elapsed = time.perf_counter() - start
    print(f"{p} × {p} relu depth 3: {elapsed:.1f} s; results {2 * nngp.nbytes / 2**30:.2f} GiB; "
          f"ntk[0, :3] = {ntk[0, :3]}")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "nt"
    if what == "nt":
        nt_agreement()
    elif what == "quadrature":
        quadrature_honesty()
    elif what == "large":
        large(int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
    else:
        raise SystemExit(__doc__)
