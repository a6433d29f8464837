"""Train thousands of independently initialised networks at once.

The ensemble is a ``jax.vmap`` over members; steps run in a compiled loop
between saved times; members are processed in chunks sized from a memory
budget. Member i's randomness (initial weights and SGD sample stream) is a
function of (seed, i) alone.

Bitwise reproducibility: XLA may round differently when the same arithmetic
is vectorised over a different number of members, but a member's numbers do
not depend on its position inside a vmap of fixed width. So members always
run in blocks of ``lanes`` and a chunk is a ``lax.map`` over blocks: the same
seed gives the same bits whatever the chunk size. ``lanes`` defaults to
min(64, ensemble size, members that fit the memory budget), so it never
depends on the chunk size; pin it to compare ensembles of different sizes
bit for bit.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.data import Dataset
from jaxlimit.errors import InputError
from jaxlimit.models.base import Model, PyTree
from jaxlimit.training.results import EnsembleResult
from jaxlimit.training.steps import Trainer, make_step

Observable = Callable[[PyTree, PyTree, Dataset], jax.Array]
"""``fn(params, initial_params, data) -> array``, recorded at every saved time."""

DEFAULT_MEMORY_BUDGET = 2 * 2**30
DEFAULT_LANES = 64


def rms_parameter_change(params: PyTree, initial_params: PyTree, data: Dataset) -> jax.Array:
    """Root-mean-square change of all parameter entries since initialisation.

    For the two-layer family this is O(N^{-1/2}) at γ = 1/2 and O(1) at γ = 1.
    """
    sq = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), params, initial_params)
    size = sum(x.size for x in jax.tree_util.tree_leaves(params))
    return jnp.sqrt(sum(jax.tree_util.tree_leaves(sq)) / size)


def validate_times(times) -> np.ndarray:
    """Sorted, finite, non-negative save times with t = 0 first."""
    t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if t.ndim != 1 or t.size == 0:
        raise InputError("times must be a non-empty 1-D list of numbers")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InputError("times must be finite and non-negative")
    if np.any(np.diff(t) <= 0):
        raise InputError("times must be strictly increasing")
    if t[0] != 0.0:
        t = np.concatenate([[0.0], t])
    return t


def member_keys(seed: int, member_ids: jax.Array) -> jax.Array:
    """Member i's key: ``fold_in(key(seed), i)``, independent of chunking."""
    base = jax.random.key(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(member_ids)


def estimate_member_bytes(model: Model, trainer: Trainer, data: Dataset, dtype) -> int:
    """A conservative estimate of one member's peak memory in a training step.

    Parameters, their initial copy, gradients and updates (≈ 6 copies), plus
    optimiser state, plus activations of up to ``rows`` inputs per step: a
    model that states its ``hidden_units`` gets ``3 × rows × hidden_units``,
    one that does not is charged as if every parameter were a unit.
    """
    shapes = jax.eval_shape(lambda k: model.init(k, dtype), jax.random.key(0))
    n_param = sum(math.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes))
    rows = max(trainer.rows_per_step(data.n_train), data.n_train + data.n_probe)
    units = min(getattr(model, "hidden_units", n_param), n_param)
    opt = 2 * n_param if trainer.method == "optax" else 0
    return jnp.dtype(dtype).itemsize * (6 * n_param + opt + 3 * rows * units)


def _fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def run_ensemble(
    model: Model,
    data: Dataset,
    trainer: Trainer | None = None,
    *,
    times,
    n_members: int,
    seed: int = 0,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    observables: Mapping[str, Observable] | None = None,
    dtype=jnp.float32,
    divergence_threshold: float = 1e6,
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
    lanes: int | None = None,
) -> EnsembleResult:
    """Train ``n_members`` independent networks and record them at ``times``.

    Args:
        model: the network description (e.g. :class:`~jaxlimit.models.TwoLayer`).
        data: the training set and probe points.
        trainer: the training method and step; online SGD with α = 1 if omitted.
        times: training times to record; t = 0 is always recorded first. Time t
            is reached after ``model.steps_to(t)`` steps (⌊N t⌋ for two layers).
        n_members: E ≥ 1, the ensemble size.
        seed: the run's seed; member i uses ``fold_in(key(seed), i)``.
        chunk_size: members per compiled call, rounded up to a multiple of
            ``lanes``; by default the largest that fits ``memory_budget`` bytes.
        observables: extra records ``name -> fn(params, params0, data)``.
        dtype: the parameters' floating type (float32 by default; float64
            needs ``jax_enable_x64``).
        divergence_threshold: a member whose output is non-finite or exceeds
            this in absolute value at any saved time is flagged as diverged.
        checkpoint_dir: if given, every finished chunk is written there and a
            rerun of the same configuration resumes from the finished chunks.
        progress: show a progress bar (member-steps) on standard error.
        lanes: the vmap width; by default min(64, ``n_members``, members that
            fit ``memory_budget``). Results are bitwise identical for any
            chunk size at a given ``lanes``; a chunk is padded to a multiple.

    Returns:
        An :class:`EnsembleResult`; diverged members are flagged, not dropped.
    """
    trainer = Trainer() if trainer is None else trainer
    if isinstance(n_members, bool) or int(n_members) != n_members or n_members < 1:
        raise InputError(f"ensemble size must be a positive integer, got {n_members}")
    n_members = int(n_members)
    if data.dim != getattr(model, "dim", data.dim):
        raise InputError(f"data has input dimension {data.dim} but the model expects {model.dim}")
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        raise InputError("float64 ensembles need jax.config.update('jax_enable_x64', True)")
    t = validate_times(times)
    steps = np.array([model.steps_to(float(ti)) for ti in t], dtype=np.int64)
    observables = dict(observables or {})

    fits = max(1, int(memory_budget // estimate_member_bytes(model, trainer, data, dtype)))
    if lanes is None:
        lanes = min(DEFAULT_LANES, n_members, fits)
    if isinstance(lanes, bool) or int(lanes) != lanes or lanes < 1:
        raise InputError(f"lanes must be a positive integer, got {lanes}")
    lanes = int(lanes)
    if chunk_size is None:
        chunk_size = min(n_members, fits)
    if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
        raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
    chunk_size = min(int(chunk_size), n_members)
    blocks = -(-chunk_size // lanes)
    padded = blocks * lanes

    config = {
        "model": model.describe(),
        "trainer": trainer.describe(),
        "dataset": data.name,
        "n_train": data.n_train,
        "n_probe": data.n_probe,
        "n_members": n_members,
        "seed": int(seed),
        "times": t.tolist(),
        "dtype": jnp.dtype(dtype).name,
        "divergence_threshold": divergence_threshold,
        "lanes": lanes,
    }

    data_cast = jax.tree_util.tree_map(lambda a: a.astype(dtype), data)
    init_state, step = make_step(model, data_cast, trainer)
    x_all = data_cast.x_all

    def init_member(key):
        k_init, k_data = jax.random.split(key)
        params = model.init(k_init, dtype)
        return params, init_state(params), k_data

    def advance_member(params, opt_state, data_key, k0, k1):
        def body(k, carry):
            return step(*carry, data_key, k)

        return jax.lax.fori_loop(k0, k1, body, (params, opt_state))

    def record_member(params, params0):
        out = model.apply(params, x_all)
        loss = jnp.mean(trainer.loss(out[: data.n_train], data_cast.y_train))
        extra = {k: fn(params, params0, data_cast) for k, fn in observables.items()}
        return out, loss, extra

    def by_block(fn):
        """Apply ``fn`` (vmapped over one block of lanes) to each block in turn."""

        def chunk_fn(*args):
            split = jax.tree_util.tree_map(lambda a: a.reshape(blocks, lanes, *a.shape[1:]), args)
            out = jax.lax.map(lambda a: fn(*a), split)
            return jax.tree_util.tree_map(lambda a: a.reshape(padded, *a.shape[2:]), out)

        return chunk_fn

    init_chunk = jax.jit(by_block(lambda ids: jax.vmap(init_member)(member_keys(seed, ids))))

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def advance_chunk(params, opt_state, data_keys, k0, k1):
        member = lambda p, s, k: advance_member(p, s, k, k0, k1)
        return by_block(jax.vmap(member))(params, opt_state, data_keys)

    record_chunk = jax.jit(by_block(jax.vmap(record_member)))

    store = _ChunkStore(checkpoint_dir, config) if checkpoint_dir is not None else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_members * int(steps[-1]), unit="member-step", unit_scale=True,
                   desc=f"training {n_members} members", leave=False)

    pieces = []
    for start in range(0, n_members, chunk_size):
        stop = min(start + chunk_size, n_members)
        cached = store.load(start, stop) if store else None
        if cached is not None:
            pieces.append(cached)
            if bar is not None:
                bar.update((stop - start) * int(steps[-1]))
            continue
        # Pad the last chunk to the common size so it reuses the compiled code.
        ids = jnp.arange(start, start + padded, dtype=jnp.uint32)
        ids = jnp.minimum(ids, n_members - 1)
        params, opt_state, data_keys = init_chunk(ids)
        params0 = jax.tree_util.tree_map(jnp.copy, params)
        outs, losses, extras = [], [], []
        for i in range(len(steps)):
            if i > 0 and steps[i] > steps[i - 1]:
                params, opt_state = advance_chunk(
                    params, opt_state, data_keys, int(steps[i - 1]), int(steps[i])
                )
                if bar is not None:
                    bar.update((stop - start) * int(steps[i] - steps[i - 1]))
            o, l, e = record_chunk(params, params0)
            outs.append(np.asarray(o))
            losses.append(np.asarray(l))
            extras.append({k: np.asarray(v) for k, v in e.items()})
        n = stop - start
        piece = {
            "outputs": np.stack(outs, axis=1)[:n],
            "loss": np.stack(losses, axis=1)[:n],
            "observables": {k: np.stack([e[k] for e in extras], axis=1)[:n] for k in observables},
        }
        if store:
            store.save(start, stop, piece)
        pieces.append(piece)
    if bar is not None:
        bar.close()

    outputs = np.concatenate([p["outputs"] for p in pieces])
    loss = np.concatenate([p["loss"] for p in pieces])
    obs = {k: np.concatenate([p["observables"][k] for p in pieces]) for k in observables}
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(outputs) | (np.abs(outputs) > divergence_threshold)
    diverged = bad.reshape(n_members, -1).any(axis=1) | ~np.isfinite(loss).all(axis=1)
    return EnsembleResult(
        outputs=outputs, loss=loss, times=t, steps=steps, diverged=diverged,
        member_ids=np.arange(n_members), observables=obs, n_train=data.n_train, config=config,
    )


class _ChunkStore:
    """Finished chunks on disk, so a long run never loses finished work."""

    def __init__(self, directory, config: dict):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag = _fingerprint(config)
        meta = self.dir / "run.json"
        if meta.exists():
            old = json.loads(meta.read_text()).get("fingerprint")
            if old != self.tag:
                raise InputError(
                    f"checkpoint directory {str(self.dir)!r} holds a different run; "
                    "use another directory or delete it"
                )
        else:
            meta.write_text(json.dumps({"fingerprint": self.tag, "config": config}, indent=1))

    def _path(self, start: int, stop: int) -> Path:
        return self.dir / f"chunk-{start:09d}-{stop:09d}.npz"

    def load(self, start: int, stop: int):
        path = self._path(start, stop)
        if not path.exists():
            return None
        with np.load(path) as f:
            return {
                "outputs": f["outputs"], "loss": f["loss"],
                "observables": {k[4:]: f[k] for k in f.files if k.startswith("obs:")},
            }

    def save(self, start: int, stop: int, piece: dict) -> None:
        tmp = self._path(start, stop).with_suffix(".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, outputs=piece["outputs"], loss=piece["loss"],
                     **{f"obs:{k}": v for k, v in piece["observables"].items()})
        tmp.replace(self._path(start, stop))
