"""Reference values from neural-tangents 0.6.5 for tests/test_mlp.py (not run by the tests).

neural-tangents no longer imports on current JAX, so this script runs in a side
environment with the last JAX it supports:

    python3 -m venv /tmp/ntenv
    /tmp/ntenv/bin/pip install "jax[cpu]==0.4.30" "jaxlib==0.4.30" neural-tangents==0.6.5 "numpy<2"
    /tmp/ntenv/bin/python tests/data/make_nt_reference.py   # writes tests/data/nt_reference.json

Everything is float64. The networks are

    stax.serial(*[Dense(n, W_std, b_std), act] * depth, Dense(1, W_std, b_std))

(the width n does not enter the infinite-width kernels). Inputs: 7 points in
d = 5, fixed below; points 1 and 2 are nearly parallel and nearly antiparallel
to point 0 (angles ≈ 1e-5 and π − 1e-5), point 4 is exactly 2 × point 3.

Predictions use points [0, 3, 5, 6] for training and [1, 2, 4] as test points:
``predict.gradient_descent_mse_ensemble(kernel_fn, x_train, y_train,
learning_rate=lr, diag_reg=0)`` with ``get="ntk", compute_cov=True`` at times
0, 0.3, 1, 5, 50 and ``None`` (t = ∞, NT's linear-solve path), on the training
points (``x_test=None``), on the test points, and on all seven points at once
(``x_test=x_all``, which gives the train–test cross-covariances); and
``predict.gp_inference`` with ``get="nngp"`` (the Bayesian posterior on the test
points) with ``diag_reg`` 0 and 0.01 in absolute units (observation noise
variance).
"""

import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

OUT = Path(__file__).with_name("nt_reference.json")

ACTIVATIONS = {
    "relu": stax.Relu,
    "erf": stax.Erf,
    "abs": stax.Abs,
    "leaky_relu(0.1)": lambda: stax.LeakyRelu(0.1),
    "sin": stax.Sin,
    "cos": stax.Cos,
    "gelu": lambda: stax.Gelu(approximate=False),
    "identity": stax.Identity,
}
SCALES = [(1.0, 0.0), (1.5, 0.3), (2.0, 0.0)]
DEPTHS = [1, 2, 3]
PREDICTIONS = [
    {"activation": "relu", "depth": 2, "W_std": 1.5, "b_std": 0.3, "learning_rate": 1.0},
    {"activation": "erf", "depth": 3, "W_std": 1.2, "b_std": 0.1, "learning_rate": 0.5},
    {"activation": "gelu", "depth": 1, "W_std": 1.0, "b_std": 0.0, "learning_rate": 2.0},
]
TRAIN, TEST = [0, 3, 5, 6], [1, 2, 4]
TIMES = [0.0, 0.3, 1.0, 5.0, 50.0]
NOISES = [0.0, 0.01]


def inputs() -> np.ndarray:
    rng = np.random.default_rng(20240515)
    x = rng.normal(size=(7, 5))
    tilt = rng.normal(size=5)
    tilt -= tilt @ x[0] / (x[0] @ x[0]) * x[0]
    tilt *= 1e-5 * np.linalg.norm(x[0]) / np.linalg.norm(tilt)
    x[1] = x[0] + tilt            # angle ≈ 1e-5
    x[2] = -1.3 * (x[0] + tilt)   # angle ≈ π − 1e-5
    x[4] = 2.0 * x[3]             # exactly parallel, twice the norm
    return x


def network(name: str, depth: int, w_std: float, b_std: float):
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(512, W_std=w_std, b_std=b_std), ACTIVATIONS[name]()]
    return stax.serial(*layers, stax.Dense(1, W_std=w_std, b_std=b_std))


def listed(a) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def main() -> None:
    x = inputs()
    xj = jnp.asarray(x)
    kernels = []
    for name in ACTIVATIONS:
        for depth in DEPTHS:
            for w_std, b_std in SCALES:
                _, _, kernel_fn = network(name, depth, w_std, b_std)
                k = kernel_fn(xj, xj, ("nngp", "ntk"))
                kernels.append({"activation": name, "depth": depth, "W_std": w_std, "b_std": b_std,
                                "nngp": listed(k.nngp), "ntk": listed(k.ntk)})

    rng = np.random.default_rng(7)
    y_train = rng.normal(size=(len(TRAIN), 1))
    x_train, x_test = xj[np.array(TRAIN)], xj[np.array(TEST)]
    predictions = []
    for case in PREDICTIONS:
        _, _, kernel_fn = network(case["activation"], case["depth"], case["W_std"], case["b_std"])
        predict_fn = nt.predict.gradient_descent_mse_ensemble(
            kernel_fn, x_train, jnp.asarray(y_train), learning_rate=case["learning_rate"], diag_reg=0.0)
        record = dict(case)
        for label, xt in (("train", None), ("test", x_test), ("all", xj)):
            means, covs = [], []
            for t in TIMES + [None]:
                g = predict_fn(t=t, x_test=xt, get="ntk", compute_cov=True)
                means.append(listed(g.mean[:, 0]))
                covs.append(listed(g.covariance))
            record[label] = {"mean": means, "cov": covs}
        k_dd = kernel_fn(x_train, None, ("nngp", "ntk"))
        k_td = kernel_fn(x_test, x_train, ("nngp", "ntk"))
        k_tt = kernel_fn(x_test, None, "nngp")
        posterior = []
        for noise in NOISES:
            gp = nt.predict.gp_inference(k_dd, jnp.asarray(y_train), diag_reg=noise, diag_reg_absolute_scale=True)
            g = gp(get="nngp", k_test_train=k_td, k_test_test=k_tt)
            posterior.append({"noise_variance": noise, "mean": listed(g.mean[:, 0]), "cov": listed(g.covariance)})
        record["nngp_posterior"] = posterior
        predictions.append(record)

    OUT.write_text(json.dumps({
        "source": "neural-tangents 0.6.5 on jax 0.4.30, float64; made by tests/data/make_nt_reference.py",
        "neural_tangents": nt.__version__,
        "jax": jax.__version__,
        "x": listed(x),
        "train": TRAIN,
        "test": TEST,
        "y_train": listed(y_train[:, 0]),
        "times": TIMES + [None],  # None: t = ∞
        "kernels": kernels,
        "predictions": predictions,
    }, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(kernels)} kernel cases, {len(predictions)} predictions)")


if __name__ == "__main__":
    main()
