"""Training sets: built-in synthetic problems, user arrays and scikit-learn's digits.

A :class:`Dataset` holds the M training pairs (x_j, y_j) and Q optional probe
inputs where outputs are recorded but never trained on. Every constructor
validates its arrays so that a NaN or a wrong shape fails here, with one line
that names the problem, rather than deep inside a compiled loop.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.streams import stream_key, stream_seed
from jaxlimit.validation import require_int, require_real


class Dataset(eqx.Module):
    """A finite training set and optional probe points.

    Attributes:
        x_train: inputs, shape (M, d).
        y_train: scalar targets, shape (M,).
        x_probe: inputs where outputs are recorded but not trained on, shape (Q, d)
            with Q ≥ 0.
        name: a short description for reports.
    """

    x_train: jax.Array
    y_train: jax.Array
    x_probe: jax.Array
    # static: data sets are tree_mapped (astype) and enter compiled programs; the name is no array
    name: str = eqx.field(static=True, default="user")

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_probe(self) -> int:
        return self.x_probe.shape[0]

    @property
    def dim(self) -> int:
        return self.x_train.shape[1]

    @property
    def x_all(self) -> jax.Array:
        """Training inputs followed by probe inputs, shape (M + Q, d)."""
        return jnp.concatenate([self.x_train, self.x_probe], axis=0)


def make_dataset(
    x_train,
    y_train,
    x_probe=None,
    *,
    name: str = "user",
    allow_duplicates: bool = False,
) -> Dataset:
    """Validate user arrays and wrap them in a :class:`Dataset`.

    Args:
        x_train: array of shape (M, d), M ≥ 1.
        y_train: array of shape (M,) (or (M, 1)).
        x_probe: optional array of shape (Q, d).
        name: a short description for reports.
        allow_duplicates: repeated training inputs make the limit kernel
            singular (two identical rows), so they are rejected unless allowed.

    Raises:
        InputError: on wrong shapes, non-finite values or duplicate inputs.
    """
    for label, arr in (("x_train", x_train), ("y_train", y_train), ("x_probe", x_probe)):
        if arr is not None and np.iscomplexobj(np.asarray(arr)):
            raise InputError(f"{label} is complex; networks here take real inputs and targets")
    try:
        x = np.asarray(x_train, dtype=np.float64)
        y = np.asarray(y_train, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("x_train and y_train must be arrays of numbers") from None
    if x.ndim != 2:
        raise InputError(f"x_train must have shape (M, d), got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"x_train must have at least one point and one feature, got {x.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (x.shape[0],):
        raise InputError(f"y_train must have shape ({x.shape[0]},) to match x_train, got {y.shape}")
    if x_probe is None:
        p = np.zeros((0, x.shape[1]))
    else:
        p = np.asarray(x_probe, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != x.shape[1]:
            raise InputError(f"x_probe must have shape (Q, {x.shape[1]}), got {p.shape}")
    for label, arr in (("x_train", x), ("y_train", y), ("x_probe", p)):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{label} contains NaN or infinite values")
    if not allow_duplicates:
        _, first = np.unique(x, axis=0, return_index=True)
        if len(first) < x.shape[0]:
            dup = sorted(set(range(x.shape[0])) - set(first.tolist()))[0]
            raise InputError(f"x_train has duplicate rows (row {dup} repeats an earlier one)")
    dtype = jnp.result_type(float)
    return Dataset(jnp.asarray(x, dtype), jnp.asarray(y, dtype), jnp.asarray(p, dtype), name)


def _normal(key: jax.Array, shape: tuple[int, ...]) -> np.ndarray:
    # Drawn in float32 and widened: the same key gives the same problem with
    # and without jax_enable_x64 (a float64 draw uses other random bits).
    return np.asarray(jax.random.normal(key, shape, jnp.float32), dtype=np.float64)


def _inputs(key: jax.Array, n: int, d: int, distribution: str) -> np.ndarray:
    if distribution == "sphere":
        z = _normal(key, (n, d))
        return z / np.linalg.norm(z, axis=1, keepdims=True)
    if distribution == "gaussian":
        # Scaled so that E‖x‖² = 1, the same size as the sphere.
        return _normal(key, (n, d)) / np.sqrt(d)
    raise InputError(f"unknown input distribution {distribution!r}; choose sphere or gaussian")


def synthetic_problem(
    key: jax.Array,
    n_train: int = 8,
    dim: int = 4,
    n_probe: int = 2,
    *,
    inputs: str = "sphere",
    target: str = "smooth",
    teacher_width: int = 4,
    noise: float = 0.0,
) -> Dataset:
    """A synthetic regression problem.

    Inputs are drawn on the unit sphere S^{d−1} or from N(0, I/d). Targets are
    ``"smooth"``: y = sin(2 v·x) + ½ cos(3 u·x) for random unit vectors u, v;
    or ``"teacher"``: a random tanh network y = (1/√K) Σ_k a_k tanh(√d b_k·x)
    with K = ``teacher_width``. ``noise`` adds N(0, noise²) label noise.

    Args:
        key: a JAX PRNG key; the problem is a pure function of it.
        n_train: M, the number of training points (≥ 1).
        dim: d, the input dimension (≥ 1).
        n_probe: Q, the number of probe points (≥ 0).
    """
    n_train = require_int(n_train, "n_train", high=10**6)
    dim = require_int(dim, "dim", high=10**6)
    n_probe = require_int(n_probe, "n_probe", low=0, high=10**6)
    noise = require_real(noise, "noise", low=0.0, low_open=False)
    if n_train * dim + n_probe * dim > 10**8:
        raise InputError(f"n_train × dim and n_probe × dim together must be at most 1e8 values, got "
                         f"{(n_train + n_probe) * dim}")
    k_x, k_p, k_t, k_n = jax.random.split(key, 4)
    x = _inputs(k_x, n_train, dim, inputs)
    p = _inputs(k_p, n_probe, dim, inputs)
    if target == "smooth":
        uv = _normal(k_t, (2, dim))
        uv /= np.linalg.norm(uv, axis=1, keepdims=True)
        y = np.sin(2.0 * x @ uv[0]) + 0.5 * np.cos(3.0 * x @ uv[1])
    elif target == "teacher":
        teacher_width = require_int(teacher_width, "teacher_width", high=10**6)
        k_a, k_b = jax.random.split(k_t)
        a = _normal(k_a, (teacher_width,))
        b = _normal(k_b, (teacher_width, dim))
        y = np.tanh(np.sqrt(dim) * x @ (b.T / np.sqrt(dim))) @ a / np.sqrt(teacher_width)
    else:
        raise InputError(f"unknown target {target!r}; choose smooth or teacher")
    if noise > 0:
        y = y + noise * _normal(k_n, (n_train,))
    return make_dataset(x, y, p, name=f"{target} target, {inputs} inputs, M={n_train}, d={dim}")


def digits_problem(
    n_train: int = 64,
    n_probe: int = 16,
    *,
    classes: tuple[int, int] = (0, 1),
    seed: int = 0,
) -> Dataset:
    """A small real problem: scikit-learn's 8×8 handwritten digits (shipped with
    scikit-learn, no download), two classes labelled ±1.

    Pixels are centred by the training mean and each image is scaled to unit
    norm, so inputs live on the sphere of dimension 64 like the synthetic ones.
    Exact duplicate images are dropped.
    """
    from sklearn.datasets import load_digits

    a, b = classes
    if a == b or not (0 <= a <= 9 and 0 <= b <= 9):
        raise InputError(f"classes must be two different digits in 0..9, got {classes}")
    digits = load_digits()
    mask = np.isin(digits.target, [a, b])
    x = digits.data[mask].astype(np.float64)
    y = np.where(digits.target[mask] == a, 1.0, -1.0)
    x, keep = np.unique(x, axis=0, return_index=True)
    y = y[keep]
    if n_train < 1 or n_probe < 0 or n_train + n_probe > len(x):
        raise InputError(
            f"digits {a} and {b} have {len(x)} distinct images; "
            f"n_train + n_probe must be at most that, got {n_train} + {n_probe}"
        )
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    x = x - x[:n_train].mean(axis=0)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms > 0, norms, 1.0)
    return make_dataset(
        x[:n_train], y[:n_train], x[n_train : n_train + n_probe],
        name=f"digits {a} vs {b}, M={n_train}",
    )


# From an experiment configuration ----------------------------------------------------------------


def data_seed(config) -> int:
    """The data's seed of a configuration: its ``data_seed`` if given, else its ``seed``."""
    return config.seed if config.data_seed is None else config.data_seed


def two_layer_data(config) -> Dataset:
    """The data set a configuration describes (``data``, ``points``, ``probes``, ``dim``, the seeds).

    Digits come from ``stream_seed(data seed, "data")``, the synthetic sets
    from ``stream_key(data seed, "data")``; ``dim`` None means the
    configuration's ``DEFAULT_DIM``.
    """
    seed = data_seed(config)
    if config.data == "digits":
        return digits_problem(config.points, config.probes, seed=stream_seed(seed, "data"))
    dim = config.DEFAULT_DIM if config.dim is None else config.dim
    return synthetic_problem(
        stream_key(seed, "data"), config.points, dim, config.probes,
        inputs="gaussian" if config.data == "gaussian" else "sphere",
        target="teacher" if config.data == "teacher" else "smooth",
    )
