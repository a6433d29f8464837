"""Train thousands of independently initialised networks at once.

Members are grouped in **blocks** of ``lanes`` consecutive member ids; one
block is one ``jax.vmap`` of the member program, and a compiled call (a
**chunk**) maps over several blocks with ``lax.map``. Training runs in
**segments** between consecutive saved times. Member i's randomness (initial
weights and sample stream) is a function of (the members' stream key, i)
alone.

Bitwise reproducibility: XLA may round differently when the same arithmetic
is vectorised over a different number of members, but a member's numbers do
not depend on its position inside a vmap of fixed width. So members always
run in blocks of ``lanes``; the same stream gives the same bits whatever the
chunk size, and a run with more members repeats the first members exactly.
``lanes`` defaults to min(64 on a CPU or 1024 on an accelerator, the ensemble
size rounded up to a power of two, members that fit the memory budget), and on
a CPU a hand-derived program's block is also sized to stay in a core's L2
cache (:func:`default_lanes`); pin it to compare ensembles of different sizes
below that bit for bit.

Online data: on a distribution (:class:`~jaxlimit.data.OnlineData`) instead of a
finite :class:`~jaxlimit.data.Dataset`, step k of member i trains on the fresh batch
``data.sample(fold_in(data_key_i, k), rows)`` (``data_key_i`` the second half of
member i's key; rows = 1 online, ``batch_size`` minibatch), a function of (member
key, k) alone, so every guarantee above holds for it too. Outputs and the loss are
recorded on the distribution's fixed evaluation sample (drawn once) and probes.
Full-batch descent is refused there, and only the generic program takes it.

Saved work: with a :class:`Checkpoint` every block's records and training state
are saved after every segment (see :mod:`jaxlimit.training.checkpoints`), so a
kill loses at most the chunk-segment in flight (one block per device by
default); a rerun resumes with any chunk size, and a run with more members or
later times reuses what was computed. Ctrl-C finishes the chunk-segment in
flight, saves it and says where it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import warnings
from collections import defaultdict
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.data import Dataset, OnlineData, check_sample_shapes
from jaxlimit.errors import InputError
from jaxlimit.models.base import Model, PyTree, check_model
from jaxlimit.names import DEFAULT_LANES as _DEFAULT_LANES
from jaxlimit.streams import key_words, member_keys as _fold_members, stream_key
from jaxlimit.training.checkpoints import BlockRecord, BlockStore, describe, estimate_store_bytes, versions
from jaxlimit.training.guards import (STEP_CHECK_MEMBERS, DivergenceWarning, check_step, diverged_members,
                                      divergence_message)
from jaxlimit.training.fast import fast_program_kind, two_layer_program
from jaxlimit.training.program import MemberProgram, Observable, generic_program
from jaxlimit.training.results import EnsembleResult
from jaxlimit.training.run_options import DEFAULT_MEMORY_BUDGET, PROGRAMS, Checkpoint, Execution, Guards
from jaxlimit.training.steps import Trainer
from jaxlimit.validation import require_int, validate_times

DEFAULT_LANES = _DEFAULT_LANES
"""The default vmap width by backend: a CPU keeps one block's weights in cache;
an accelerator needs wide blocks to fill its cores (defined in the light
:mod:`jaxlimit.names`, so that ``--help`` states it)."""
CPU_BLOCK_CACHE_BYTES = 1 << 20
"""A hand-derived program's block state on a CPU is kept within this (a core's L2 cache)."""
MIN_CPU_LANES = 4
MAX_RESULT_BYTES = 8 * 2**30
"""Outputs, losses and observables of the whole ensemble must fit in this many bytes."""


def rms_parameter_change(params: PyTree, initial_params: PyTree, data: Dataset) -> jax.Array:
    """Root-mean-square change of all parameter entries since initialisation.

    For the two-layer family this is O(N^{-1/2}) at γ = 1/2 and O(1) at γ = 1.
    """
    sq = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), params, initial_params)
    size = sum(x.size for x in jax.tree_util.tree_leaves(params))
    return jnp.sqrt(sum(jax.tree_util.tree_leaves(sq)) / size)


def members_root(seed: int | jax.Array) -> jax.Array:
    """The members' stream: ``stream_key(seed, "members")`` for an integer seed,
    or the given key itself (experiments pass one stream per width or arm)."""
    if isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        if seed.shape != ():
            raise InputError(f"seed must be an integer or one PRNG key, got keys of shape {seed.shape}")
        return seed
    return stream_key(seed, "members")


def member_keys(seed: int | jax.Array, member_ids) -> jax.Array:
    """Member i's key: ``fold_in(members_root(seed), i)``, independent of chunking."""
    return _fold_members(members_root(seed), member_ids)


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


def default_lanes(kind: str, program: MemberProgram, data: Dataset, n_members: int, fits: int) -> int:
    """The vmap width when none is given: ``DEFAULT_LANES`` for the backend, no more members
    than the ensemble (rounded up to a power of two) or the memory budget holds; on a CPU, a
    hand-derived program's block of lanes is also kept within ``CPU_BLOCK_CACHE_BYTES`` (its
    state then stays in a core's L2 cache between steps, which is what bounds its speed),
    but never below ``MIN_CPU_LANES``, below which the per-step overhead dominates."""
    backend = jax.default_backend()
    widest = DEFAULT_LANES.get(backend, DEFAULT_LANES["cpu"])
    if backend == "cpu" and kind != "generic":
        shapes = jax.eval_shape(lambda k: program.init(k, data), jax.random.key(0))
        state = sum(math.prod(s.shape) * s.dtype.itemsize for s in jax.tree_util.tree_leaves(shapes))
        cached = 1 << max(int(CPU_BLOCK_CACHE_BYTES // state).bit_length() - 1, 0)
        widest = min(widest, max(MIN_CPU_LANES, cached))
    return min(widest, 1 << (n_members - 1).bit_length(), fits)


def run_description(model: Model, data: Dataset | OnlineData, trainer: Trainer, *, root: jax.Array, dtype,
                    lanes: int, observables: Mapping[str, Observable]) -> dict:
    """Everything that determines a member's numbers (the checkpoint fingerprint's input)."""
    if isinstance(data, OnlineData):
        arrays = {"sampler": data.sampler, "x_eval": data.x_eval, "y_eval": data.y_eval, "x_probe": data.x_probe}
    else:
        arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_probe": data.x_probe}
    return {
        "model": describe(model),
        "data": describe(arrays),
        "trainer": describe(trainer),
        "dtype": jnp.dtype(dtype).name,
        "members_stream": key_words(root),
        "lanes": int(lanes),
        "observables": describe(dict(observables)),
        "versions": versions(),
    }


def choose_program(program: str, model: Model, data: Dataset | OnlineData, trainer: Trainer,
                   observables: Mapping[str, Observable]) -> str:
    """The member program ``run_ensemble`` uses: the requested one, or for "auto" the fastest that applies.

    The hand-derived programs index a finite training set, so online data (a distribution) always
    takes the generic program; asking for a hand-derived one there is refused."""
    if program not in PROGRAMS:
        raise InputError(f"unknown program {program!r}; choose {', '.join(PROGRAMS)}")
    if isinstance(data, OnlineData):
        if program not in ("auto", "generic"):
            raise InputError(f"the {program!r} program indexes a finite training set; online data (a "
                             "distribution) uses program='generic'")
        return "generic"
    fast = fast_program_kind(model, data, trainer, observables)
    if program == "auto":
        return fast or "generic"
    if program != "generic" and fast is None:
        raise InputError(f"the {program!r} program covers two-layer networks trained by SGD or gradient "
                         "descent on the squared or Huber loss; use program='generic'")
    if program == "pre-activations" and observables:
        raise InputError("the 'pre-activations' program keeps no weights, so it cannot record observables")
    return program


@contextlib.contextmanager
def _deferred_interrupt(enabled: bool):
    """While active, the first Ctrl-C sets a flag (checked between segments); a second raises."""
    flag = {"hit": False}
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["hit"]:
            raise KeyboardInterrupt
        flag["hit"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def run_ensemble(
    model: Model,
    data: Dataset,
    trainer: Trainer | None = None,
    *,
    times,
    n_members: int,
    seed: int | jax.Array = 0,
    observables: Mapping[str, Observable] | None = None,
    dtype=jnp.float32,
    execution: Execution = Execution(),
    checkpoint: Checkpoint | None = None,
    guards: Guards = Guards(),
) -> EnsembleResult:
    """Train ``n_members`` independent networks and record them at ``times``.

    Args:
        model: the network description (e.g. :class:`~jaxlimit.models.TwoLayer`).
        data: the training set and probe points (a :class:`~jaxlimit.data.Dataset`), or a
            distribution sampled afresh at every step (:class:`~jaxlimit.data.OnlineData`: step k
            of member i trains on ``data.sample(fold_in(data_key_i, k), rows)``; outputs and the
            loss are recorded on its fixed evaluation sample, then its probes; "online" and
            "minibatch" only, and the generic program).
        trainer: the training method and step; omitted, ``Trainer()``: **online SGD** (one
            random sample per step) with α = 1, not the full-batch descent whose small-step
            limit is the gradient flow of the kernel limits (``Trainer(method="fullbatch")``);
            the method is recorded in ``result.config["trainer"]``.
        times: training times to record; t = 0 is always recorded first. Time t
            is reached after ``model.steps_to(t)`` steps (⌊N t⌋ for two layers).
        n_members: E ≥ 1, the ensemble size.
        seed: an integer (the members' stream is ``stream_key(seed, "members")``)
            or a PRNG key used as the members' stream; member i uses
            ``fold_in(stream, i)``.
        observables: extra records ``name -> fn(params, params0, data)``.
        dtype: the parameters' floating type (float32 by default; float64
            needs ``jax_enable_x64``).
        execution: how the members are executed (:class:`Execution`: chunk size, memory
            budget, lanes, program, devices, progress bar).
        checkpoint: where finished work is saved after every segment (:class:`Checkpoint`);
            a rerun resumes, and a run of anything else computes afresh. None: nothing is saved.
        guards: the divergence threshold and the full-batch step check (:class:`Guards`);
            the step check's estimate is in ``result.config["step_check"]``.

    Returns:
        An :class:`EnsembleResult`; diverged members are flagged, not dropped, and a
        :class:`~jaxlimit.training.guards.DivergenceWarning` gives their count and the likely
        cause (also in ``result.config["divergence"]``). Its ``config["trained_on_devices"]``
        and ``config["trained_by_processes"]`` list, per block, the device ids and process
        indices that computed it in this call (empty for a block taken whole from
        the checkpoint).
    """
    run = _prepare(model, data, trainer, times=times, n_members=n_members, seed=seed, observables=observables,
                   dtype=dtype, execution=execution, checkpoint=checkpoint, guards=guards)
    store = _open_store(run, checkpoint)
    devices = _devices(execution)
    chunk_blocks = _chunk_blocks(execution.chunk_size, run.lanes, len(devices), run.fits)
    engine = _cached_engine(run.engine_key, run.program, run.lanes, devices).bind(run.root, run.data)
    records = [store.load(b) if store else BlockRecord() for b in range(run.n_blocks)]
    plans = _plan_work(records, run.needed)
    trained = _train(run, engine, records, plans, store, chunk_blocks=chunk_blocks, n_devices=len(devices),
                     progress=execution.progress)
    return _assemble(run, records, trained)


@dataclasses.dataclass
class _Run:
    """One call's resolved inputs: the checked arguments and what was derived from them."""

    model: Model
    data: Dataset  # cast to the run's dtype
    trainer: Trainer
    observables: dict
    dtype: Any
    n_members: int
    times: np.ndarray
    steps: np.ndarray  # the step of each saved time
    root: jax.Array  # the members' stream
    kind: str  # the member program's name
    program: MemberProgram
    lanes: int
    fits: int  # members within the memory budget
    step_record: dict
    record_shapes: Any  # one member's record (jax.eval_shape)
    record_bytes: int
    engine_key: Any
    divergence_threshold: float
    config: dict

    @property
    def n_blocks(self) -> int:
        return -(-self.n_members // self.lanes)

    @property
    def needed(self) -> list[int]:
        """The distinct saved steps, increasing."""
        return sorted(set(int(s) for s in self.steps))

    def members_in(self, b: int) -> int:
        return min(self.lanes, self.n_members - b * self.lanes)


def _check_arguments(model, data, trainer, *, times, n_members, observables, dtype, execution, checkpoint,
                     guards) -> tuple[Trainer, int, np.ndarray, np.ndarray, dict]:
    """The checked trainer, ensemble size, times, their steps and observables (InputError on bad input)."""
    check_model(model)
    trainer = Trainer() if trainer is None else trainer
    if not isinstance(trainer, Trainer):
        raise InputError(f"trainer must be a jaxlimit Trainer, got {type(trainer).__name__}")
    if not isinstance(data, (Dataset, OnlineData)):
        raise InputError(f"data must be a jaxlimit Dataset or OnlineData, got {type(data).__name__}")
    if isinstance(data, OnlineData):
        if trainer.method == "fullbatch" or (trainer.method == "optax" and trainer.batch_size == 0):
            raise InputError(f"{trainer.method} training (full batch) has no meaning on a distribution; use "
                             "Trainer(method='online') or 'minibatch' (or an optax optimizer with batch_size ≥ 1)")
        check_sample_shapes(data, trainer.rows_per_step(data.n_train))
    for value, kind, name in ((execution, Execution, "execution"), (guards, Guards, "guards")):
        if not isinstance(value, kind):
            raise InputError(f"{name} must be a jaxlimit {kind.__name__}, got {type(value).__name__}")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise InputError(f"checkpoint must be a jaxlimit Checkpoint or None, got {type(checkpoint).__name__}")
    n_members = require_int(n_members, "ensemble size", high=2**31 - 1)
    if data.dim != getattr(model, "dim", data.dim):
        raise InputError(f"data has input dimension {data.dim} but the model expects {model.dim}")
    if jnp.dtype(dtype) not in (jnp.float32, jnp.float64):
        raise InputError(f"dtype must be float32 or float64, got {dtype}")
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        raise InputError("float64 ensembles need jax.config.update('jax_enable_x64', True)")
    t = validate_times(times)
    steps = np.array([model.steps_to(float(ti)) for ti in t], dtype=np.int64)
    if steps[-1] >= 2**31:
        raise InputError(f"t = {t[-1]:g} needs {steps[-1]} steps, more than 2^31; shorten the horizon")
    observables = dict(observables or {})
    for name, fn in observables.items():
        if not (isinstance(name, str) and name and callable(fn)):
            raise InputError(f"observables must map names to functions, got {name!r}: {fn!r}")
    return trainer, n_members, t, steps, observables


def _prepare(model, data, trainer, *, times, n_members, seed, observables, dtype, execution: Execution,
             checkpoint, guards: Guards) -> _Run:
    """Check the arguments, choose the program and lanes, check the step and the result size."""
    trainer, n_members, t, steps, observables = _check_arguments(
        model, data, trainer, times=times, n_members=n_members, observables=observables, dtype=dtype,
        execution=execution, checkpoint=checkpoint, guards=guards)
    member_bytes = estimate_member_bytes(model, trainer, data, dtype)
    fits = int(execution.memory_budget // member_bytes)
    if fits < 1:
        raise InputError(f"one member needs about {member_bytes / 1e9:.3g} GB, more than the memory "
                         f"budget of {execution.memory_budget / 1e9:.3g} GB; reduce the width or raise the budget")
    root = members_root(seed)
    kind = choose_program(execution.program, model, data, trainer, observables)
    # every real array (a Dataset's, or a distribution's evaluation sample, probes and sampler arrays)
    data = jax.tree_util.tree_map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, data)
    step_record = check_step(model, data, trainer, member_keys(root, np.arange(min(STEP_CHECK_MEMBERS, n_members))),
                             dtype, guards.step_check, stacklevel=4)
    program = (generic_program(model, trainer, observables, dtype) if kind == "generic"
               else two_layer_program(model, trainer, observables, dtype, kind))
    lanes = execution.lanes or default_lanes(kind, program, data, n_members, fits)
    engine_key = _engine_key(kind, model, trainer, observables, dtype, lanes)
    program = _ENGINES[engine_key].program if engine_key in _ENGINES else program
    point_count = data.n_train + data.n_probe
    record_shapes = jax.eval_shape(
        lambda k: program.record(program.init(k, data), program.init(k, data), data), jax.random.key(0))
    record_bytes = sum(math.prod(s.shape) * 4 for s in jax.tree_util.tree_leaves(record_shapes))
    if n_members * len(t) * max(record_bytes, 4 * (point_count + 1)) > MAX_RESULT_BYTES:
        raise InputError(
            f"{n_members} members × {len(t)} times × {point_count} points would need more than "
            f"{MAX_RESULT_BYTES / 2**30:.0f} GiB of results; record fewer times, points or members"
        )
    config = {
        "model": model.describe(), "trainer": trainer.describe(), "dataset": data.name, "n_train": data.n_train,
        "n_probe": data.n_probe, "n_members": n_members, "members_stream": key_words(root), "times": t.tolist(),
        "dtype": jnp.dtype(dtype).name, "divergence_threshold": float(guards.divergence_threshold),
        "lanes": lanes, "program": kind, "step_check": step_record,
    }
    if isinstance(data, OnlineData):
        config["online_data"] = {"evaluation_points": data.n_eval, "rows_per_step": trainer.rows_per_step(data.n_train),
                                 "stream": "sample(fold_in(member data key, step), rows)"}
    if isinstance(seed, (int, np.integer)):
        config["seed"] = int(seed)
    return _Run(model, data, trainer, observables, dtype, n_members, t, steps, root, kind, program, lanes, fits,
                step_record, record_shapes, record_bytes, engine_key, guards.divergence_threshold, config)


def _open_store(run: _Run, checkpoint: Checkpoint | None) -> BlockStore | None:
    """The run's block store in the checkpoint directory (None without one), its space checked."""
    if checkpoint is None:
        return None
    description = run_description(run.model, run.data, run.trainer, root=run.root, dtype=run.dtype,
                                  lanes=run.lanes, observables=run.observables) | {"program": run.kind}
    fresh = checkpoint.fresh
    if fresh and jax.process_count() > 1:  # one process clears, then all open the store
        from jax.experimental import multihost_utils

        if jax.process_index() == 0:
            BlockStore(checkpoint.directory, description, fresh=True)
        multihost_utils.sync_global_devices("jaxlimit-fresh-checkpoint")
        fresh = False
    store = BlockStore(checkpoint.directory, description, fresh=fresh)
    state_bytes = sum(math.prod(s.shape) * s.dtype.itemsize for s in jax.tree_util.tree_leaves(
        jax.eval_shape(lambda k: run.program.init(k, run.data), jax.random.key(0))))
    store.check_space(estimate_store_bytes(state_bytes, run.record_bytes * len(run.times), run.n_blocks * run.lanes))
    run.config["checkpoint"] = {"dir": str(store.dir), "fingerprint": store.tag}
    return store


def _devices(execution: Execution) -> list:
    """The devices to shard over: the given ones, or every local device (said once)."""
    if execution.devices is not None:
        return list(execution.devices)
    from jaxlimit.devices import notice_once

    notice_once()
    return jax.local_devices()


def _chunk_blocks(chunk_size: int | None, lanes: int, n_devices: int, fits: int) -> int:
    """Blocks per compiled call: ``chunk_size`` members rounded up to whole blocks on every device,
    within the memory budget; by default one block per device (the least work lost to a kill)."""
    per_device = -(-(chunk_size or lanes * n_devices) // (lanes * n_devices))
    return n_devices * max(1, min(per_device, max(1, fits // lanes // n_devices)))


def _plan_work(records: list[BlockRecord], needed: list[int]) -> dict[tuple, list[int]]:
    """This process's blocks grouped by the work they need, ``(start step, missing steps) -> blocks``.

    Blocks that need the same work share chunks; with several processes
    (jax.distributed), process p trains blocks b ≡ p mod count.
    """
    n_proc, rank = jax.process_count(), jax.process_index()
    plans: dict[tuple, list[int]] = defaultdict(list)
    for b, rec in enumerate(records):
        if b % n_proc != rank:
            continue
        missing = tuple(s for s in needed if s not in rec.outputs)
        if not missing:
            continue
        start = rec.state_step if (rec.state is not None and rec.state_step <= missing[0]) else 0
        plans[(start, missing)].append(b)
    return plans


def _progress_bar(run: _Run, plans: dict[tuple, list[int]], progress: bool | None):
    """A bar of member-steps (None when hidden): this process's work, what the checkpoint holds done."""
    if progress is None:
        from jaxlimit.display import show_progress

        progress = show_progress()
    n_proc, rank = jax.process_count(), jax.process_index()
    if not progress or rank != 0:
        return None
    from jaxlimit.display import progress_bar_class

    total = sum(run.members_in(b) for b in range(rank, run.n_blocks, n_proc)) * run.needed[-1]
    remaining = sum(run.members_in(b) * (missing[-1] - start) for (start, missing), bs in plans.items() for b in bs)
    return progress_bar_class()(total=total, initial=total - remaining, unit="member-step", unit_scale=True,
                                desc=f"training {run.n_members} members", leave=False, smoothing=0.1)


def _every_device() -> list:
    return sorted(jax.devices(), key=lambda d: d.id)


def _train(run: _Run, engine: "_BlockEngine", records: list[BlockRecord], plans: dict[tuple, list[int]],
           store: BlockStore | None, *, chunk_blocks: int, n_devices: int, progress: bool | None) -> np.ndarray:
    """Train the planned chunks segment by segment into ``records`` (saved after every segment);
    returns, per block, which devices computed it in this call.

    Which devices computed a block is read from where the chunk's state lives
    (metadata only, no transfer): the proof that the work was spread.
    """
    every_device = _every_device()
    column = {d.id: i for i, d in enumerate(every_device)}
    trained = np.zeros((run.n_blocks, len(every_device)), bool)
    bar = _progress_bar(run, plans, progress)
    watch = _FirstDivergence(run)
    with _deferred_interrupt(store is not None) as interrupt:
        for (start, missing), blocks in sorted(plans.items()):
            for chunk in chunks_of(blocks, chunk_blocks, n_devices):
                state = _train_chunk(run, engine, chunk, start, missing, records, store, bar, watch, interrupt)
                for shard in jax.tree_util.tree_leaves(state)[0].addressable_shards:
                    for b in chunk[shard.index[0]]:
                        trained[b, column[shard.device.id]] = True
    if bar is not None:
        bar.close()
    return trained


def _train_chunk(run: _Run, engine: "_BlockEngine", chunk: list[int], start: int, missing: tuple,
                 records: list[BlockRecord], store: BlockStore | None, bar, watch: "_FirstDivergence",
                 interrupt: dict):
    """Train one chunk from ``start`` through the ``missing`` steps, recording (and saving) each; its final state.

    A Ctrl-C (``interrupt``) stops it after the segment in flight is saved.
    """
    state0 = engine.init(chunk)
    if start > 0:
        state = engine.restore(chunk, [records[b].state for b in chunk], state0)
    else:  # advance() donates its input, so it must not be state0 itself
        state = jax.tree_util.tree_map(jnp.copy, state0)
    current = start
    for target in missing:
        if target > current:
            state = engine.advance(state, chunk, current, target)
            if bar is not None:
                bar.update(sum(run.members_in(b) for b in chunk) * (target - current))
            current = target
        outs, losses, obs = engine.record(state, state0, chunk)
        watch.check(chunk, outs, losses, target)
        leaves = engine.state_leaves(state) if store else None
        for j, b in enumerate(chunk):
            rec = records[b]
            rec.outputs[target], rec.loss[target] = outs[j], losses[j]
            rec.observables[target] = {k: v[j] for k, v in obs.items()}
            if store is not None and target >= rec.state_step:
                rec.state_step, rec.state = target, [leaf[j] for leaf in leaves]
            if store is not None:
                store.save(b, rec)
        if interrupt["hit"]:
            if bar is not None:
                bar.close()
            raise KeyboardInterrupt(
                f"interrupted: finished work is saved in {store.dir}; rerun the same command to resume")
    return state


class _FirstDivergence:
    """Says divergence at the first record that shows it, not only when the run ends: a member
    that blows up early makes the rest of a long run worth reconsidering (training goes on)."""

    def __init__(self, run: _Run):
        self.run = run
        self.seen: dict[int, np.ndarray] = {}
        self.said = False

    def check(self, chunk: list[int], outs, losses, target: int) -> None:
        if self.said:
            return
        run = self.run
        for j, b in enumerate(chunk):
            live = run.members_in(b)
            bad = diverged_members(outs[j][:live], losses[j][:live], run.divergence_threshold)
            self.seen[b] = self.seen.get(b, False) | bad
        found = int(sum(np.sum(v) for v in self.seen.values()))
        if found:
            self.said = True
            trained_so_far = sum(run.members_in(b) for b in self.seen)
            # stacklevel: check, _train_chunk, _train, run_ensemble, its caller
            warnings.warn(divergence_message(found, run.n_members, run.step_record, run.model,
                                             during=(trained_so_far, int(target))),
                          DivergenceWarning, stacklevel=5)


def _assemble(run: _Run, records: list[BlockRecord], trained: np.ndarray) -> EnsembleResult:
    """The result: every block's records at the saved times (gathered from every process), the
    devices that trained each block, and the divergence flags (said once more when any)."""
    n_proc, config, needed = jax.process_count(), run.config, run.needed
    if n_proc > 1:
        _gather_blocks(records, needed, run.record_shapes, run.lanes, n_proc)
        from jax.experimental import multihost_utils

        trained = np.asarray(multihost_utils.process_allgather(trained)).any(axis=0)
    every_device = _every_device()
    config["trained_on_devices"] = [[every_device[i].id for i in np.flatnonzero(row)] for row in trained]
    config["trained_by_processes"] = [sorted({every_device[i].process_index for i in np.flatnonzero(row)})
                                      for row in trained]
    index = [needed.index(int(s)) for s in run.steps]

    def gather(values):
        per_block = [np.stack([values(records[b], needed[i]) for i in index], axis=1) for b in range(run.n_blocks)]
        return np.concatenate(per_block)[:run.n_members]

    outputs = gather(lambda rec, s: rec.outputs[s])
    loss = gather(lambda rec, s: rec.loss[s])
    obs = {k: gather(lambda rec, s, k=k: rec.observables[s][k]) for k in run.observables}
    diverged = diverged_members(outputs, loss, run.divergence_threshold)
    if diverged.any():
        config["divergence"] = divergence_message(int(diverged.sum()), run.n_members, run.step_record, run.model)
        warnings.warn(config["divergence"], DivergenceWarning, stacklevel=3)  # _assemble, run_ensemble, its caller
    return EnsembleResult(
        outputs=outputs, loss=loss, times=run.times, steps=run.steps, diverged=diverged,
        member_ids=np.arange(run.n_members), observables=obs, n_train=run.data.n_train, config=config,
    )


def _gather_blocks(records: list[BlockRecord], needed: list[int], shapes, lanes: int, n_proc: int) -> None:
    """Give every process every block's records (process p trained blocks b ≡ p mod n_proc).

    ``shapes`` is one member's record (``jax.eval_shape`` of the program's
    record); blocks of other processes are zeros here until the all-gather.
    """
    from jax.experimental import multihost_utils

    rank = jax.process_index()
    fields = [("outputs", None, shapes.outputs), ("loss", None, shapes.loss)]
    fields += [("observables", k, v) for k, v in shapes.observables.items()]
    for field, name, shape in fields:
        blank = np.zeros((lanes, *shape.shape), shape.dtype)

        def value(rec, s):
            return getattr(rec, field)[s] if name is None else rec.observables[s][name]

        local = np.stack([np.stack([value(r, s) if b % n_proc == rank else blank for s in needed])
                          for b, r in enumerate(records)])
        every = np.asarray(multihost_utils.process_allgather(local))  # (n_proc, blocks, steps, lanes, ...)
        for b, rec in enumerate(records):
            for i, s in enumerate(needed):
                if name is None:
                    getattr(rec, field)[s] = every[b % n_proc, b, i]
                else:
                    rec.observables.setdefault(s, {})[name] = every[b % n_proc, b, i]


class _BlockEngine:
    """Compiled chunk functions over arrays of shape (blocks, lanes, ...), sharded over devices.

    A chunk's blocks are split evenly over a mesh of local devices
    (``jax.shard_map`` over the block axis); each device maps over its own
    blocks with ``lax.map``, one ``vmap`` of ``lanes`` members at a time, so a
    member's numbers never depend on the device count.
    """

    def __init__(self, program: MemberProgram, lanes: int, devices):
        self.lanes = lanes
        self.devices = list(devices)
        self.program = program
        self.root = self.data = None
        self._compiled: dict[int, tuple] = {}

    def bind(self, root: jax.Array, data: Dataset) -> "_BlockEngine":
        """The members' stream and the data of the run about to use the compiled functions."""
        self.root, self.data = root, data
        return self

    def _functions(self, n_devices: int):
        if n_devices not in self._compiled:
            program = self.program
            mesh = jax.sharding.Mesh(np.asarray(self.devices[:n_devices]), ("blocks",))
            spec, rep = jax.sharding.PartitionSpec("blocks"), jax.sharding.PartitionSpec()

            def per_block(fn):
                return lambda *args: jax.lax.map(lambda a: fn(*a), args)

            def keys_of(root, ids):
                return _fold_members(root, ids.reshape(-1)).reshape(ids.shape)

            def init(ids, root, data):
                return per_block(jax.vmap(lambda k: program.init(k, data)))(keys_of(root, ids))

            def advance(state, ids, k0, k1, root, data):
                step = jax.vmap(lambda s, k: program.advance(s, k, k0, k1, data))
                return per_block(step)(state, keys_of(root, ids))

            def record(state, state0, data):
                return per_block(jax.vmap(lambda s, s0: program.record(s, s0, data)))(state, state0)

            shard = lambda fn, n_in: jax.shard_map(  # noqa: E731
                fn, mesh=mesh, in_specs=n_in, out_specs=spec, check_vma=False)
            self._compiled[n_devices] = (
                jax.jit(shard(init, (spec, rep, rep))),
                jax.jit(shard(advance, (spec, spec, rep, rep, rep, rep)), donate_argnums=(0,)),
                jax.jit(shard(record, (spec, spec, rep))),
            )
        return self._compiled[n_devices]

    def devices_for(self, n_blocks: int) -> int:
        """Devices used for a chunk of ``n_blocks`` (they must divide it evenly)."""
        n = min(len(self.devices), n_blocks)
        while n_blocks % n:
            n -= 1
        return n

    def ids(self, blocks: list[int]) -> np.ndarray:
        return (np.asarray(blocks, np.uint32)[:, None] * self.lanes
                + np.arange(self.lanes, dtype=np.uint32)[None, :])

    def init(self, blocks: list[int]):
        return self._functions(self.devices_for(len(blocks)))[0](self.ids(blocks), self.root, self.data)

    def advance(self, state, blocks: list[int], k0: int, k1: int):
        # Int32 step bounds: the same compiled loop, and the same sample stream,
        # with and without jax_enable_x64.
        fn = self._functions(self.devices_for(len(blocks)))[1]
        return fn(state, self.ids(blocks), np.int32(k0), np.int32(k1), self.root, self.data)

    def record(self, state, state0, blocks: list[int]):
        rec = self._functions(self.devices_for(len(blocks)))[2](state, state0, self.data)
        split = lambda a: list(np.asarray(a))  # noqa: E731 - one array per block
        return split(rec.outputs), split(rec.loss), {k: split(v) for k, v in rec.observables.items()}

    def state_leaves(self, state) -> list[list[np.ndarray]]:
        """Per leaf, the list over blocks of that block's array."""
        return [list(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(state)]

    def restore(self, blocks: list[int], saved: list[list[np.ndarray]], like):
        leaves, treedef = jax.tree_util.tree_flatten(like)
        stacked = [jax.device_put(np.stack([s[j] for s in saved]).astype(leaf.dtype), leaf.sharding)
                   for j, leaf in enumerate(leaves)]
        return jax.tree_util.tree_unflatten(treedef, stacked)


_ENGINES: dict = {}
_MAX_ENGINES = 16


def _engine_key(kind, model, trainer, observables, dtype, lanes):
    """What the compiled functions depend on besides shapes (None: do not cache)."""
    key = (kind, model, trainer, tuple(sorted(observables.items())), jnp.dtype(dtype).name, int(lanes))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _cached_engine(key, program: MemberProgram, lanes: int, devices) -> "_BlockEngine":
    """The compiled engine of an earlier run with the same model, trainer and observables:
    compiled code is reused across calls (jit caches it by shape)."""
    if key is None:
        return _BlockEngine(program, lanes, devices)
    cached = _ENGINES.get(key)
    if cached is None or cached.devices != list(devices):
        if len(_ENGINES) >= _MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES)))
        cached = _ENGINES[key] = _BlockEngine(program, lanes, devices)
    return cached


def chunks_of(blocks: list[int], per_chunk: int, n_devices: int) -> list[list[int]]:
    """Split blocks into chunks of ``per_chunk`` blocks (a multiple of the device
    count), then the rest into a chunk that all devices share evenly and a last
    one on fewer devices: no padded work."""
    out = []
    i = 0
    while len(blocks) - i >= per_chunk:
        out.append(blocks[i : i + per_chunk])
        i += per_chunk
    rest = blocks[i:]
    even = len(rest) - len(rest) % n_devices
    if even:
        out.append(rest[:even])
    if len(rest) > even:
        out.append(rest[even:])
    return out


__all__ = [
    "DEFAULT_LANES", "DEFAULT_MEMORY_BUDGET", "Checkpoint", "Execution", "Guards", "Observable", "member_keys",
    "members_root",
    "rms_parameter_change", "run_ensemble", "validate_times",
]
