"""Saved work: never another run's numbers, nothing lost to a kill, one seed one run."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxlimit as jl
from jaxlimit.activations import get_activation
from jaxlimit.training import checkpoints

HERE = Path(__file__).parent
HARNESS = HERE / "helpers" / "checkpoint_run.py"
ROOT = HERE.parent


@pytest.fixture(scope="module")
def problem():
    data = jl.synthetic_problem(jax.random.key(0), 6, 4, 2)
    return jl.TwoLayer(48, 4, "xavier", "tanh"), data


KW = dict(times=[0.5, 1.0], n_members=12, seed=3, execution=jl.Execution(lanes=4))


def _run(model, data, trainer=None, **kw):
    return jl.run_ensemble(model, data, trainer, **{**KW, **kw})


def test_resume_reads_saved_blocks_instead_of_recomputing(problem, tmp_path):
    model, data = problem
    first = _run(model, data, checkpoint=jl.Checkpoint(tmp_path))
    blocks = sorted(tmp_path.glob("*/block-*.npz"))
    assert len(blocks) == 3  # 12 members in blocks of 4
    # Tamper with block 0: a resumed run must take it from disk, not recompute it.
    with np.load(blocks[0]) as f:
        saved = {k: f[k] for k in f.files}
    saved["outputs"] = saved["outputs"] + 1.0
    np.savez(blocks[0], **saved)
    resumed = _run(model, data, checkpoint=jl.Checkpoint(tmp_path), execution=jl.Execution(lanes=4, chunk_size=8))
    np.testing.assert_array_equal(resumed.outputs[:4], first.outputs[:4] + 1.0)
    np.testing.assert_array_equal(resumed.outputs[4:], first.outputs[4:])
    # --fresh discards it.
    again = _run(model, data, checkpoint=jl.Checkpoint(tmp_path, fresh=True))
    np.testing.assert_array_equal(again.outputs, first.outputs)


def _other_data(data):
    return jl.make_dataset(np.asarray(data.x_train), np.asarray(data.y_train) + 0.5,
                           np.asarray(data.x_probe), name=data.name)  # same name and shapes


@pytest.mark.parametrize("change", ["data", "optimizer", "activation", "observable", "dtype", "seed",
                                    "loss", "init"])
def test_a_changed_run_is_never_given_the_saved_numbers(problem, tmp_path, change):
    model, data = problem
    trainer = jl.Trainer(method="optax", optimizer=optax.sgd(1.0), batch_size=2)
    act1, act2 = (lambda u: jnp.tanh(u)), (lambda u: jnp.tanh(u) + 0.05 * u)
    base = dict(model=jl.TwoLayer(48, 4, "xavier", act1), data=data, trainer=trainer, dtype=jnp.float32,
                observables={"move": jl.rms_parameter_change}, seed=3)
    other = dict(base)
    if change == "data":
        other["data"] = _other_data(data)
    elif change == "optimizer":
        other["trainer"] = jl.Trainer(method="optax", optimizer=optax.adam(1e-2), batch_size=2)
    elif change == "activation":
        other["model"] = jl.TwoLayer(48, 4, "xavier", act2)
    elif change == "observable":
        other["observables"] = {"move": jl.rms_parameter_change,
                                "c_norm": lambda p, p0, d: jnp.linalg.norm(p.c)}
    elif change == "dtype":
        other["dtype"] = jnp.float64
    elif change == "seed":
        other["seed"] = 4
    elif change == "loss":
        other["trainer"] = jl.Trainer(method="optax", optimizer=optax.sgd(1.0), batch_size=2,
                                      loss=jl.huber_loss(0.1))
    elif change == "init":
        other["model"] = jl.TwoLayer(48, 4, "xavier", act1, jl.InitLaw(w_std=1.5))

    def run(cfg, ckpt):
        return jl.run_ensemble(cfg["model"], cfg["data"], cfg["trainer"], times=[0.5, 1.0], n_members=8,
                               execution=jl.Execution(lanes=4), seed=cfg["seed"], dtype=cfg["dtype"],
                               observables=cfg["observables"], checkpoint=None if ckpt is None else jl.Checkpoint(ckpt))

    first = run(base, tmp_path)
    second = run(other, tmp_path)
    truth = run(other, None)
    np.testing.assert_array_equal(second.outputs, truth.outputs)
    assert set(second.observables) == set(other["observables"])
    for name in truth.observables:
        np.testing.assert_array_equal(second.observables[name], truth.observables[name])
    if change != "observable":  # an observable does not change the outputs
        assert not np.array_equal(np.asarray(second.outputs, np.float64), np.asarray(first.outputs, np.float64))
    # Both runs now live side by side under their own fingerprints.
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_more_members_and_later_times_reuse_saved_work(problem, tmp_path, monkeypatch):
    model, data = problem
    _run(model, data, checkpoint=jl.Checkpoint(tmp_path))  # 12 members up to t = 1
    calls = []
    advance = jl.training.ensemble._BlockEngine.advance

    def counted(self, state, blocks, k0, k1):
        calls.append((tuple(blocks), k0, k1))
        return advance(self, state, blocks, k0, k1)

    monkeypatch.setattr(jl.training.ensemble._BlockEngine, "advance", counted)
    longer = _run(model, data, checkpoint=jl.Checkpoint(tmp_path), n_members=16, times=[0.5, 1.0, 1.5])
    steps_1 = model.steps_to(1.0)
    # Old blocks continue from their saved state at t = 1; only the new block starts at 0.
    for blocks, k0, k1 in calls:
        assert k0 >= steps_1 or blocks == (3,), (blocks, k0, k1)
    monkeypatch.undo()
    np.testing.assert_array_equal(longer.outputs, _run(model, data, n_members=16, times=[0.5, 1.0, 1.5]).outputs)


def test_unidentifiable_callables_are_refused_for_checkpointing(problem, tmp_path):
    model, data = problem

    class Opaque:
        def __call__(self, params, params0, d):
            return jnp.sum(params.c)

    with pytest.raises(jl.InputError, match="cannot identify"):
        _run(model, data, checkpoint=jl.Checkpoint(tmp_path), observables={"opaque": Opaque()})
    assert not list(tmp_path.glob("*/block-*"))
    # Without a checkpoint the same run is fine.
    assert _run(model, data, observables={"opaque": Opaque()}).observables["opaque"].shape == (12, 3)


def test_identities_tell_functions_apart():
    describe = checkpoints.describe
    assert describe(optax.sgd(0.1)) == describe(optax.sgd(0.1))
    assert describe(optax.sgd(0.1)) != describe(optax.sgd(0.2))
    assert describe(optax.adam(1e-3)) != describe(optax.sgd(1e-3))
    f1, f2 = get_activation(lambda u: u**3), get_activation(lambda u: u**3 + 1e-3)
    assert describe(f1) != describe(f2)
    assert describe(get_activation(jax.nn.relu)) != describe(get_activation("tanh"))


def test_a_full_disk_is_reported_in_one_line_and_keeps_saved_work(problem, tmp_path, monkeypatch):
    model, data = problem
    whole = _run(model, data)
    real_write = checkpoints.BlockStore._atomic_write
    count = {"n": 0}

    def failing(self, path, payload):
        count["n"] += 1
        if count["n"] > 4:  # run.json and three block saves succeed, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, path, payload)

    monkeypatch.setattr(checkpoints.BlockStore, "_atomic_write", failing)
    with pytest.raises(jl.InputError, match="No space left on device") as info:
        _run(model, data, checkpoint=jl.Checkpoint(tmp_path))
    assert len(str(info.value).splitlines()) == 1 and "intact" in str(info.value)
    monkeypatch.undo()
    assert not list(tmp_path.glob("*/.tmp-*"))  # no half-written file left behind
    saved = sorted(tmp_path.glob("*/block-*.npz"))
    assert saved  # what was written is readable and is reused
    resumed = _run(model, data, checkpoint=jl.Checkpoint(tmp_path))
    np.testing.assert_array_equal(resumed.outputs, whole.outputs)


def test_too_little_space_is_refused_before_the_run(problem, tmp_path, monkeypatch):
    model, data = problem
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(jl.InputError, match="GB free"):
        _run(model, data, checkpoint=jl.Checkpoint(tmp_path))
    assert not list(tmp_path.glob("*/block-*"))


def test_unwritable_checkpoint_directory_is_refused(problem, tmp_path):
    model, data = problem
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(jl.InputError, match="is a file"):
        _run(model, data, checkpoint=jl.Checkpoint(file))
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(jl.InputError, match="cannot write checkpoint"):
            _run(model, data, checkpoint=jl.Checkpoint(ro / "sub"))


def _harness(directory, out, chunk, slow=True, segments=8, blocks=5):
    args = [sys.executable, str(HARNESS), str(directory), str(out), str(chunk), "slow" if slow else "fast",
            str(segments), str(blocks)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _saved_segments(directory) -> int:
    total = 0
    for path in Path(directory).glob("*/block-*.npz"):
        with np.load(path) as f:
            total += len(f["steps"])
    return total


def _steps_on_disk(directory) -> dict[int, set[int]]:
    """Block -> the step counts its file holds."""
    saved = {}
    for path in Path(directory).glob("*/block-*.npz"):
        with np.load(path) as f:
            saved[int(path.stem.split("-")[1])] = {int(s) for s in f["steps"]}
    return saved


def _lost_beyond_the_segment_in_flight(log: list[str], directory) -> list[tuple[int, int]]:
    """(block, step) of every advance started before the one in flight that is not on disk.

    Only advances count (``start`` lines name their blocks and target step), never the
    records at t = 0, which need no training."""
    starts = [line.split() for line in log if line.startswith("start")]
    on_disk = _steps_on_disk(directory)
    lost = [(b, int(s[2])) for s in starts[:-1] for b in map(int, s[4].split(","))
            if int(s[2]) not in on_disk.get(b, ())]
    said = [tuple(map(int, line.split()[1:])) for line in log if line.startswith("saved")]
    return lost + [(b, k) for b, k in said if k not in on_disk.get(b, ())]


def test_kills_at_random_moments_lose_at_most_the_segment_in_flight_and_resume_bitwise(tmp_path):
    """Each run draws its own moments (the seed is in every failure message). In each of three
    killed runs, at a random moment within each of the first few advances, the process is frozen
    (SIGSTOP: the disk is then what a kill at that moment leaves) and checked; the last moment is a
    SIGKILL. Every advance but the one in flight must be on disk, so a change that saves one
    advance late (a kill then loses two segments) fails at the second advance of a chunk."""
    segments, blocks = 4, 8  # 32 block-segments; the killed runs do at most 24
    ref = _harness(tmp_path / "ref", tmp_path / "ref.npy", 8, slow=False, segments=segments, blocks=blocks)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    expected = np.load(tmp_path / "ref.npy")
    total = _saved_segments(tmp_path / "ref")

    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    directory = tmp_path / "ckpt"
    for attempt, chunk in enumerate((8, 16, 8)):
        proc = _harness(directory, tmp_path / "out.npy", chunk, segments=segments, blocks=blocks)
        log: list[str] = []
        reader = threading.Thread(target=lambda: [log.append(line) for line in proc.stdout], daemon=True)
        reader.start()
        moments = rng.randint(3, 6)
        for moment in range(1, moments + 1):
            while sum(x.startswith("start") for x in log) < moment and proc.poll() is None:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.1))  # somewhere in the advance (0.1 s) or the saves after it
            where = f"seed {seed}, run {attempt}, moment {moment}"
            assert proc.poll() is None, f"{where}: the run ended before its kill"
            if moment < moments:
                proc.send_signal(signal.SIGSTOP)
                time.sleep(0.05)  # let the reader take what was printed before the stop
                lost = _lost_beyond_the_segment_in_flight(list(log), directory)
                proc.send_signal(signal.SIGCONT)
            else:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                reader.join(timeout=60)
                lost = _lost_beyond_the_segment_in_flight(log, directory)
            assert not lost, f"{where}: saved work lost beyond the segment in flight: {lost}"
        assert _saved_segments(directory) < total
    final = _harness(directory, tmp_path / "out.npy", 16, slow=False, segments=segments, blocks=blocks)
    assert final.wait(timeout=300) == 0, final.stderr.read()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_ctrl_c_saves_the_segment_in_flight_and_says_where(tmp_path):
    directory = tmp_path / "ckpt"
    proc = _harness(directory, tmp_path / "out.npy", 8)
    log = []
    for line in proc.stdout:
        log.append(line)
        if sum(x.startswith("start") for x in log) == 3:
            proc.send_signal(signal.SIGINT)
            break
    log += proc.stdout.read().splitlines()
    err = proc.stderr.read()
    assert proc.wait(timeout=60) != 0
    assert "interrupted: finished work is saved in" in err and str(directory) in err
    # Every advance that started (the one in flight when Ctrl-C came included)
    # finished and was saved, with the record at t = 0, and the run stopped
    # before the end (9 records per block).
    starts = [line.split() for line in log if line.startswith("start")]
    advanced = sum(int(s[3]) for s in starts)  # blocks advanced (a chunk spans one block per device)
    saved = [line.split() for line in log if line.startswith("saved")]
    blocks = {b for _, b, _ in saved}
    assert 3 <= len(starts) and advanced < 5 * 8
    assert len(saved) == len(blocks) + advanced  # one record at t = 0 per block, one per block advance
    assert _saved_segments(directory) == len(saved)


X64_SCRIPT = r"""
import sys, json, numpy as np, jax
if sys.argv[1] == "on":
    jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import jaxlimit as jl
data = jl.synthetic_problem(jl.stream_key(7, "data"), 6, 4, 2)
model = jl.TwoLayer(64, 4, "xavier", "tanh")
dtype = jnp.float64 if sys.argv[2] == "f64" else jnp.float32
for method in ("online", "minibatch"):
    r = jl.run_ensemble(model, data, jl.Trainer(method=method, batch_size=3), times=[0.5, 1.0],
                        n_members=8, seed=7, dtype=dtype)
    np.save(sys.argv[3] + f"-{method}.npy", r.outputs)
np.save(sys.argv[3] + "-data.npy", np.asarray(data.x_train, np.float64))
"""


def _x64_run(tmp_path, x64, dtype):
    prefix = str(tmp_path / f"{x64}-{dtype}")
    subprocess.run([sys.executable, "-c", X64_SCRIPT, x64, dtype, prefix], check=True, cwd=ROOT,
                   capture_output=True)
    return {k: np.load(f"{prefix}-{k}.npy") for k in ("online", "minibatch", "data")}


def test_one_seed_one_run_with_and_without_x64(tmp_path):
    off = _x64_run(tmp_path, "off", "f32")
    on = _x64_run(tmp_path, "on", "f32")
    wide = _x64_run(tmp_path, "on", "f64")
    # The data are drawn in float32 and held at the precision JAX has (float32
    # without x64): the same numbers once rounded to float32.
    np.testing.assert_array_equal(on["data"].astype(np.float32), off["data"].astype(np.float32))
    for k in ("online", "minibatch"):
        np.testing.assert_array_equal(on[k], off[k])  # float32 ensembles: bitwise
    for k in ("online", "minibatch"):
        # float64 follows the same network and sample stream: agreement to float32 rounding.
        np.testing.assert_allclose(wide[k], off[k], rtol=0, atol=2e-5)
        assert np.max(np.abs(wide[k] - off[k])) > 0  # it really ran in float64


def test_command_line_and_library_give_the_same_numbers(tmp_path):
    out = tmp_path / "rep"
    subprocess.run([sys.executable, "-m", "jaxlimit", "ensemble", "--width", "32", "--ensemble", "16",
                    "--t-max", "0.5", "--n-times", "2", "--seed", "5", "--points", "6", "--dim", "4",
                    "--probes", "2", "--out", str(out), "--no-progress"], check=True, cwd=ROOT,
                   capture_output=True)
    report = json.loads((out / "report.json").read_text())
    script = r"""
import json, sys, numpy as np, jax
import jaxlimit as jl
data = jl.synthetic_problem(jl.stream_key(5, "data"), 6, 4, 2, inputs="sphere", target="smooth")
r = jl.run_ensemble(jl.TwoLayer(32, 4), data, jl.Trainer(), times=np.linspace(0, 0.5, 3),
                    n_members=16, seed=5)
print(json.dumps([float(v) for v in np.mean(r.outputs[:, -1], axis=0)]))
"""
    lib = subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT, capture_output=True, text=True)
    np.testing.assert_array_equal(json.loads(lib.stdout), report["metrics"]["output_mean_final"])


def test_result_store_computes_once_and_recomputes_what_changed(tmp_path):
    import jax

    from jaxlimit.training.checkpoints import ResultStore, cached

    calls = []

    def compute(x):
        def inner():
            calls.append(x)
            return {"y": np.arange(3) * x}
        return inner

    store = ResultStore(tmp_path, {"experiment": "test"})
    inputs = {"part": "a", "key": jax.random.key(1), "x": np.ones(2)}
    first = cached(store, inputs, compute(2))
    again = cached(ResultStore(tmp_path, {"experiment": "test"}), inputs, compute(5))
    np.testing.assert_array_equal(first["y"], again["y"])
    assert calls == [2]
    cached(store, {**inputs, "x": np.zeros(2)}, compute(3))  # other inputs: computed
    assert calls == [2, 3] and len(list(tmp_path.glob("*/result-*.npz"))) == 2
    for path in tmp_path.glob("*/result-*.npz"):
        path.write_bytes(b"damaged")
    assert cached(store, inputs, compute(7))["y"][1] == 7  # a damaged file is recomputed, not trusted
    cached(ResultStore(tmp_path, {"experiment": "test"}, fresh=True), inputs, compute(4))
    assert calls[-1] == 4
    assert cached(None, inputs, compute(6))["y"][1] == 6
