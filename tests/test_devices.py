"""The engine on several devices and several processes: the same bits as one.

Also the hand-derived two-layer programs against the generic ``jax.grad`` one.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxlimit as jl
from jaxlimit.losses import get_loss

ROOT = Path(__file__).parent.parent

DEVICE_SCRIPT = r"""
import os, sys
n = int(sys.argv[1])
# appended to the suite's compile flags, so that both runs are compiled alike (and fast)
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}"
import jax, numpy as np
import jaxlimit as jl
assert len(jax.devices()) == n
data = jl.synthetic_problem(jax.random.key(0), 6, 4, 2)
out = {}
for program in ("generic", "weights"):
    for method in ("online", "fullbatch"):
        r = jl.run_ensemble(jl.TwoLayer(64, 4), data, jl.Trainer(method=method), times=[0.5, 1.0],
                            n_members=70, seed=3, execution=jl.Execution(lanes=8, program=program),
                            observables={"move": jl.rms_parameter_change})
        out[f"{program}-{method}"] = r.outputs
        out[f"{program}-{method}-move"] = r.observables["move"]
        out[f"{program}-{method}-devices"] = np.array([d for (d,) in r.config["trained_on_devices"]])
# Online data (a fresh sample every step, the generic program): the same bits on any device count.
online = jl.teacher_student_stream(4, noise_std=0.1, n_eval=6, n_probe=2)
r = jl.run_ensemble(jl.TwoLayer(64, 4), online, jl.Trainer(method="minibatch", batch_size=2), times=[0.5, 1.0],
                    n_members=70, seed=3, execution=jl.Execution(lanes=8))
out["online-data"] = r.outputs
out["online-data-devices"] = np.array([d for (d,) in r.config["trained_on_devices"]])
np.savez(sys.argv[2], **out)
"""


def _run_devices(n, path):
    subprocess.run([sys.executable, "-c", DEVICE_SCRIPT, str(n), str(path)], check=True, cwd=ROOT,
                   capture_output=True)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_one_and_four_devices_give_identical_bits(tmp_path):
    # 70 members in blocks of 8: 9 blocks, so 4 devices run chunks of 4, 4 and then 1 block alone
    # (a chunk narrower than the device count), and the last block is partly empty.
    one = _run_devices(1, tmp_path / "one.npz")
    many = _run_devices(4, tmp_path / "d4.npz")
    for key in one:
        if not key.endswith("-devices"):
            np.testing.assert_array_equal(many[key], one[key], err_msg=f"4 devices, {key}")
    assert np.unique(one["generic-online"][:, -1, 0]).size == 70
    # Where each block ran (read from where its state lived), exactly one device each: one
    # device trains all on its own; four take blocks 0-3 and 4-7 one each, and block 8 runs alone.
    for key in (k for k in one if k.endswith("-devices")):
        np.testing.assert_array_equal(one[key], [0] * 9, err_msg=key)
        np.testing.assert_array_equal(many[key], [0, 1, 2, 3, 0, 1, 2, 3, 0], err_msg=key)


DEFAULT_SCRIPT = r"""
import os, sys, json
if sys.argv[1] == "jax-first":
    import jax
    jax.numpy.zeros(1).block_until_ready()  # JAX's backend starts before jaxlimit is imported
import jax, numpy as np
import jaxlimit as jl
data = jl.synthetic_problem(jax.random.key(0), 6, 4, 2)
for _ in range(2):  # the notice comes once
    r = jl.run_ensemble(jl.TwoLayer(16, 4), data, times=[0.5], n_members=32, seed=1, execution=jl.Execution(lanes=4))
np.save(sys.argv[2], r.outputs)
print(json.dumps({"devices": len(jax.devices()), "cores": len(os.sched_getaffinity(0)),
                  "trained_on": sorted({d for (d,) in r.config["trained_on_devices"]})}))
"""


def test_import_sets_up_one_device_per_core_unless_told_not_to(tmp_path):
    """A fresh process that imports jaxlimit runs its ensembles on one device per core, as the
    command line does, and says so once; JAXLIMIT_CPU_CORES=0 keeps JAX's one device; when JAX
    started first, it says once how to get the speed. The numbers are the same bits."""
    # The suite's compile flags stay (they only make compilation faster); a device count does not.
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f)
    env = {k: v for k, v in os.environ.items() if k not in ("JAXLIMIT_CPU_CORES", "XLA_FLAGS")} | {"XLA_FLAGS": flags}
    runs = {}
    for case, extra in (("default", {}), ("off", {"JAXLIMIT_CPU_CORES": "0"}), ("jax-first", {})):
        proc = subprocess.run([sys.executable, "-c", DEFAULT_SCRIPT, case, str(tmp_path / f"{case}.npy")],
                              cwd=ROOT, env={**env, **extra}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        runs[case] = json.loads(proc.stdout.splitlines()[-1]) | {"notice": [
            line for line in proc.stderr.splitlines() if line.startswith("jaxlimit:")]}
    cores = runs["default"]["cores"]
    if cores > 1:
        assert runs["default"]["devices"] == cores and runs["default"]["trained_on"] == list(range(min(cores, 8)))
        assert len(runs["default"]["notice"]) == 1 and "set up at import" in runs["default"]["notice"][0]
        assert len(runs["jax-first"]["notice"]) == 1 and "before the first JAX computation" in runs["jax-first"]["notice"][0]
    assert runs["off"]["devices"] == runs["jax-first"]["devices"] == 1 and not runs["off"]["notice"]
    for case in ("off", "jax-first"):
        np.testing.assert_array_equal(np.load(tmp_path / f"{case}.npy"), np.load(tmp_path / "default.npy"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "jaxlimit", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


COMMON = ["ensemble", "--width", "32", "--ensemble", "150", "--t-max", "0.5", "--n-times", "2",
          "--no-progress", "--seed", "2"]


def test_two_processes_give_the_single_process_report(tmp_path):
    single = _cli(COMMON + ["--out", str(tmp_path / "single")])
    assert single.wait(timeout=300) == 0, single.stderr.read()
    port = _free_port()
    # One device per process, compiled with the same XLA flags as the single-process run (the suite's
    # flags, tests/conftest.py): bits are the same across device and process counts, not across
    # compiler settings.
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=1")
    procs = [_cli(COMMON + ["--out", str(tmp_path / "multi"), "--coordinator", f"127.0.0.1:{port}",
                            "--num-processes", "2", "--process-id", str(i),
                            "--checkpoint", str(tmp_path / "ckpt")], env=env) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    with np.load(tmp_path / "single" / "data.npz") as a, np.load(tmp_path / "multi" / "data.npz") as b:
        np.testing.assert_array_equal(a["outputs"], b["outputs"])
        np.testing.assert_array_equal(a["loss"], b["loss"])
    # 150 members in blocks of 64: process 0 trained blocks 0 and 2, process 1 block 1, and
    # no block was trained twice (each process records the blocks it computed; all-gathered).
    assert len(sorted((tmp_path / "ckpt").glob("*/block-*.npz"))) == 3
    report = json.loads((tmp_path / "multi" / "report.json").read_text())
    assert report["provenance"]["processes"] == 2
    assert report["config"]["ensemble"]["trained_by_processes"] == [[0], [1], [0]]
    single = json.loads((tmp_path / "single" / "report.json").read_text())
    assert single["config"]["ensemble"]["trained_by_processes"] == [[0], [0], [0]]


# Each method once, each activation and each loss twice: the programs' activation and loss code
# does not depend on the method.
@pytest.mark.parametrize("method,activation,loss", [("online", "tanh", "squared"), ("minibatch", "relu", "huber"),
                                                     ("fullbatch", "tanh", "huber"), ("online", "relu", "squared")])
def test_hand_derived_programs_agree_with_autodiff(method, activation, loss):
    from jaxlimit.training.ensemble import choose_program

    for dim in (4, 20):  # d < P: weights; d > P: the pre-activation representation pays
        data = jl.synthetic_problem(jax.random.key(0), 6, dim, 2)
        model = jl.TwoLayer(96, dim, 0.75, activation)
        trainer = jl.Trainer(alpha=1.5, method=method, batch_size=3, loss=get_loss(loss, delta=0.3))
        kw = dict(times=[0.5, 2.0], n_members=12, seed=1, dtype=jnp.float64)
        generic = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=4, program="generic"), **kw)
        assert generic.config["program"] == "generic"
        for program in ("weights", "pre-activations"):
            fast = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=4, program=program), **kw)
            np.testing.assert_allclose(fast.outputs, generic.outputs, rtol=0, atol=1e-12)
            np.testing.assert_allclose(fast.loss, generic.loss, rtol=1e-12)
        assert choose_program("auto", model, data, trainer, {}) == ("pre-activations" if dim > 8 else "weights")
    # float32 to float32 rounding.
    f32 = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=4), **{**kw, "dtype": jnp.float32})
    np.testing.assert_allclose(f32.outputs, generic.outputs, rtol=0, atol=5e-5)
    # The comparison has teeth: one more step is far outside these tolerances.
    longer = jl.run_ensemble(model, data, trainer, execution=jl.Execution(lanes=4, program="weights"),
                             **{**kw, "times": [0.5, 2.0 + 1 / 96]})
    assert np.max(np.abs(longer.outputs[:, -1] - generic.outputs[:, -1])) > 1e-6


def test_fast_program_refusals():
    data = jl.synthetic_problem(jax.random.key(0), 6, 4, 2)
    import optax

    with pytest.raises(jl.InputError, match="program"):
        jl.Execution(program="turbo")
    with pytest.raises(jl.InputError, match="generic"):
        jl.run_ensemble(jl.TwoLayer(8, 4), data, jl.Trainer(method="optax", optimizer=optax.sgd(0.1)),
                        times=[0.5], n_members=2, execution=jl.Execution(program="weights"))
    with pytest.raises(jl.InputError, match="observables"):
        jl.run_ensemble(jl.TwoLayer(8, 4), data, times=[0.5], n_members=2,
                        execution=jl.Execution(program="pre-activations"),
                        observables={"move": jl.rms_parameter_change})
