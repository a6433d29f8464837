"""Training data: finite sets (built-in synthetic problems, user arrays, scikit-learn's digits)
and distributions sampled afresh at every step.

A :class:`Dataset` holds the M training pairs (x_j, y_j) and Q optional probe
inputs where outputs are recorded but never trained on. An :class:`OnlineData`
is a distribution instead: a pure ``sample(key, n) -> (x (n, d), y (n,))``, a
fixed evaluation sample drawn once (where the engine records outputs and the
loss, as on a Dataset's training set) and optional probe inputs. Every
constructor validates its arrays so that a NaN or a wrong shape fails here,
with one line that names the problem, rather than deep inside a compiled loop.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.streams import stream_key, stream_seed
from jaxlimit.validation import require_int, require_real


class _RecordedPoints(eqx.Module):
    """What the engine reads of any data: the rows it records on (``x_train``: a Dataset's training set,
    a distribution's evaluation sample), then the probe inputs ``x_probe``."""

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
        """The recorded rows followed by the probe inputs, shape (M + Q, d)."""
        return jnp.concatenate([self.x_train, self.x_probe], axis=0)


class Dataset(_RecordedPoints):
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


class OnlineData(_RecordedPoints):
    """A data distribution: the engine trains on a fresh sample at every step.

    With ``run_ensemble``, step k of member i trains on
    ``sample(fold_in(data_key_i, k), rows)`` (rows = 1 for online SGD, ``batch_size`` for
    minibatch SGD), a function of (member key, k) alone; no sample is reused.

    Attributes:
        sampler: a pure callable ``sampler(key, n) -> (x (n, d), y (n,))``, an equinox module
            whose array leaves (e.g. a teacher's weights) are data and whose other fields are static.
        x_eval, y_eval: a fixed evaluation sample of the distribution, drawn once (shape
            (E, d), (E,)). The engine records outputs and the loss on it where a
            :class:`Dataset` records them on its training set (``n_train``, ``x_train`` and
            ``y_train`` name it, so that records read both kinds of data alike).
        x_probe: inputs where outputs are recorded, shape (Q, d) with Q ≥ 0.
        name: a short description for reports.
    """

    sampler: Any
    x_eval: jax.Array
    y_eval: jax.Array
    x_probe: jax.Array
    # static: data enter compiled programs; the name is no array
    name: str = eqx.field(static=True, default="user distribution")

    def sample(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """n fresh pairs drawn from ``key``: x (n, d) and y (n,)."""
        return self.sampler(key, n)

    @property
    def n_eval(self) -> int:
        return self.x_eval.shape[0]

    @property
    def x_train(self) -> jax.Array:
        """The evaluation sample, where the engine records as on a Dataset's training rows."""
        return self.x_eval

    @property
    def y_train(self) -> jax.Array:
        return self.y_eval


class FunctionSampler(eqx.Module):
    """A pure function ``fn(key, n) -> (x, y)`` as a sampler (the function is static)."""

    fn: Callable = eqx.field(static=True)

    def __call__(self, key, n):
        return self.fn(key, n)


class CommitteeTeacher(eqx.Module):
    """x ~ N(0, I_D), y = Σ_m erf(w*_m·x/√(2D)) + σ ζ with ζ ~ N(0, 1): the soft committee
    teacher of Saad & Solla (v* = 1, no 1/M; g(u) = erf(u/√2) of ρ_m = w*_m·x/√D).

    x and ζ are drawn in float32 from the two halves of the key and widened to the teacher's dtype,
    so a key gives the same sample with and without ``jax_enable_x64``."""

    w_star: jax.Array  # (M, D)
    noise_std: float = eqx.field(static=True, default=0.0)

    def __call__(self, key, n):
        from jaxlimit.limits.committee import erf_g

        k_x, k_z = jax.random.split(key)
        d = self.w_star.shape[1]
        x = jax.random.normal(k_x, (n, d), jnp.float32).astype(self.w_star.dtype)
        y = jnp.sum(erf_g(x @ self.w_star.T / math.sqrt(d)), axis=1)
        return x, y + self.noise_std * jax.random.normal(k_z, (n,), jnp.float32).astype(y.dtype)


class ModelTeacher(eqx.Module):
    """x ~ N(0, I_d), y = teacher.apply(params, x) + σ ζ for any jaxlimit model and its parameters
    (x and ζ drawn as in :class:`CommitteeTeacher`)."""

    params: Any
    model: Any = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    noise_std: float = eqx.field(static=True, default=0.0)

    def __call__(self, key, n):
        k_x, k_z = jax.random.split(key)
        dtype = jax.tree_util.tree_leaves(self.params)[0].dtype
        x = jax.random.normal(k_x, (n, self.dim), jnp.float32).astype(dtype)
        y = jnp.reshape(self.model.apply(self.params, x), (n,))
        return x, y + self.noise_std * jax.random.normal(k_z, (n,), jnp.float32).astype(y.dtype)


def check_sample_shapes(data: OnlineData, rows: int) -> None:
    """Refuse (one line) a sampler whose ``sample(key, rows)`` is not x (rows, d), y (rows,) of reals;
    checked by ``jax.eval_shape``, nothing is computed."""
    try:
        x, y = jax.eval_shape(lambda k: data.sample(k, rows), jax.random.key(0))
    except InputError:
        raise
    except Exception as err:  # a sampler that cannot be traced, or returns something else than a pair
        raise InputError(f"the sampler of {data.name!r} failed on (key, {rows}): "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
    for label, got, want in (("x", x, (rows, data.dim)), ("y", y, (rows,))):
        if getattr(got, "shape", None) != want or not jnp.issubdtype(got.dtype, jnp.floating):
            raise InputError(f"the sampler of {data.name!r} must return {label} of shape {want} (real) for "
                             f"n = {rows}, got {getattr(got, 'shape', type(got).__name__)}")


def online_data(
    sample: Callable,
    dim: int,
    *,
    n_eval: int = 256,
    x_probe=None,
    seed: int = 0,
    name: str = "user distribution",
) -> OnlineData:
    """Validate a distribution and wrap it in an :class:`OnlineData`.

    Args:
        sample: ``sample(key, n) -> (x (n, dim), y (n,))``, pure (a function, or an equinox
            module whose non-array fields are static).
        dim: d, the input dimension.
        n_eval: E ≥ 1, the size of the fixed evaluation sample, drawn once by
            ``sample(stream_key(seed, "evaluation"), E)``.
        x_probe: optional inputs (Q, d) where outputs are recorded.
        seed: the seed of the evaluation sample's stream.
        name: a short description for reports.

    Raises:
        InputError: a sampler returning other shapes (checked by ``jax.eval_shape`` before
            anything is drawn), or non-finite values in the evaluation sample or the probes.
    """
    if not callable(sample):
        raise InputError(f"sample must be a function sample(key, n) -> (x, y), got {type(sample).__name__}")
    dim = require_int(dim, "dim", high=10**7)
    n_eval = require_int(n_eval, "n_eval", high=10**6)
    sampler = sample if isinstance(sample, eqx.Module) else FunctionSampler(sample)
    for leaf in jax.tree_util.tree_leaves(sampler):
        if not isinstance(leaf, (jax.Array, np.ndarray)):
            raise InputError(f"the sampler's fields must be arrays or static (eqx.field(static=True)), "
                             f"got a {type(leaf).__name__}")
    dtype = jnp.result_type(float)
    blank = jnp.zeros((0, dim), dtype)
    shell = OnlineData(sampler, blank, jnp.zeros((0,), dtype), blank, name)
    for rows in (1, 3):  # the engine's batch is checked again at its own size
        check_sample_shapes(shell, rows)
    x, y = sampler(stream_key(seed, "evaluation"), n_eval)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    p = np.zeros((0, dim)) if x_probe is None else np.asarray(x_probe, np.float64)
    if p.ndim != 2 or p.shape[1] != dim:
        raise InputError(f"x_probe must have shape (Q, {dim}), got {p.shape}")
    for label, arr in (("the evaluation sample's x", x), ("the evaluation sample's y", y), ("x_probe", p)):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{label} contains NaN or infinite values (drawn by the sampler of {name!r})"
                             if label != "x_probe" else "x_probe contains NaN or infinite values")
    return OnlineData(sampler, jnp.asarray(x, dtype), jnp.asarray(y, dtype), jnp.asarray(p, dtype), name)


def teacher_student_stream(
    dim: int,
    *,
    teachers: int = 2,
    noise_std: float = 0.0,
    teacher=None,
    teacher_params=None,
    seed: int = 0,
    n_eval: int = 256,
    n_probe: int = 0,
    name: str | None = None,
) -> OnlineData:
    """Online teacher–student data: x ~ N(0, I_D), y = teacher(x) + σ ζ, a fresh pair every step.

    The default teacher is the soft committee machine of Saad & Solla (docs/committee.md):
    y = Σ_{m=1}^{M} erf(w*_m·x/√(2D)) + σ ζ, with M = ``teachers`` orthonormalised weights
    (T = w* w*ᵀ/D = I exactly) drawn from ``stream_key(seed, "teacher")``. Or any jaxlimit model
    and its parameters: y = teacher.apply(teacher_params, x) + σ ζ.

    Args:
        dim: D, the input dimension.
        teachers: M, the committee teacher's units (ignored with a ``teacher`` model).
        noise_std: σ ≥ 0, the label noise.
        teacher, teacher_params: a model and its parameters, both or neither.
        seed: the seed of the teacher's and the evaluation sample's streams ("teacher",
            "evaluation") and of the probes ("probes", N(0, I_D)).
        n_eval: the size of the fixed evaluation sample; n_probe: Q ≥ 0 probe inputs.
    """
    dim = require_int(dim, "dim", high=10**7)
    noise_std = require_real(noise_std, "noise_std", low=0.0, low_open=False)
    n_probe = require_int(n_probe, "n_probe", low=0, high=10**6)
    dtype = jnp.result_type(float)
    if (teacher is None) != (teacher_params is None):
        raise InputError("give both teacher and teacher_params, or neither (the committee teacher)")
    if teacher is None:
        from jaxlimit.training.committee import orthonormal_teacher

        teachers = require_int(teachers, "teachers", high=dim)
        sampler = CommitteeTeacher(orthonormal_teacher(stream_key(seed, "teacher"), teachers, dim, dtype), noise_std)
        label = f"committee teacher M={teachers}"
    else:
        from jaxlimit.models.base import check_model

        check_model(teacher, "teacher")
        if getattr(teacher, "dim", dim) != dim:
            raise InputError(f"the teacher expects input dimension {teacher.dim}, not dim = {dim}")
        params = jax.tree_util.tree_map(jnp.asarray, teacher_params)
        sampler = ModelTeacher(params, teacher, dim, noise_std)
        label = f"{type(teacher).__name__} teacher"
    probes = _normal(stream_key(seed, "probes"), (n_probe, dim))
    return online_data(sampler, dim, n_eval=n_eval, x_probe=probes, seed=seed,
                       name=name or f"online {label}, σ={noise_std:g}, x ~ N(0, I_{dim})")


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
