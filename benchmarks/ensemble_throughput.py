"""Throughput of the ensemble engine against a naive JAX loop, a compiled reference kernel and PyTorch.

The default problem (issue 14): E = 4 096 members, width N = 1 024, d = 8, M = 16
training points, tanh, Xavier scaling, online SGD for 2 048 steps (t = 2). One
neuron-step is one hidden unit of one member advanced by one SGD step.

Contenders, each in its own process (so each gets the XLA flags it is meant
to run with), interleaved, best of ``--repeats``:

* ``jaxlimit``: ``run_ensemble`` at its defaults, as the command line runs it
  (one single-threaded CPU device per core, the hand-derived program);
* ``naive``: ``jit(vmap(lax.scan))`` of the ``jax.grad`` SGD step over all
  members at once, XLA's default threading;
* ``reference``: the same SGD as a plain C loop (``benchmarks/reference``),
  compiled here with ``cc -O3 -march=native -ffast-math -fopenmp``, one member
  at a time per thread; it states what fraction of this machine the engine
  reaches;
* ``torch``: the same SGD batched over members in PyTorch, when installed.

Every JAX contender is called twice with the same arguments: the first call
compiles, the second is the **warm run** (the throughput figures use it). The
tables print the warm run, the **compile** time (the XLA compilations of the
first call, summed from JAX's monitoring events by
:func:`jaxlimit.devices.compilations`) with the number of programs compiled on the
first and on the warm call (``first/warm``: a warm call compiles nothing), and the
whole first call (compile + run + tracing). The C reference and PyTorch compile
nothing at call time ("—").

Then the library's default, in fresh processes with no set-up call: ``import
jaxlimit`` (one single-threaded device per core, set up at import), the same
with ``JAXLIMIT_CPU_CORES=0`` (JAX's one multi-threaded device) and as the
command line runs; and what the default does to a user's own JAX code (a large
matrix product, an elementwise map with a reduction) in the same process.

    python benchmarks/ensemble_throughput.py              # default problem, then scaling tables
    python benchmarks/ensemble_throughput.py --quick      # small sizes, to check that it runs
    python benchmarks/ensemble_throughput.py --no-tables  # the default problem only
    python benchmarks/ensemble_throughput.py --library-default-only --members 1024
    python benchmarks/ensemble_throughput.py --families-only   # the deep MLP and the CNN tables

The deep MLP (3 hidden layers of 512, relu, d = 8, 16 points) and a user network (a small
equinox CNN on digits) train by full-batch descent three ways: jaxlimit at its defaults (one
device per core, the generic ``jax.grad`` program), the naive ``jit(vmap(scan(grad)))`` on JAX's
default device, and a direct reference with every member's weights in one batched array and
the backward pass written as batched matrix products (einsum).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# Contenders, each run as ``python ensemble_throughput.py --worker NAME ...`` -------------


def _first_and_warm(call) -> dict:
    """``call()`` twice: the first call's wall time and XLA compilations, then the warm call's."""
    from jaxlimit.devices import compilations

    with compilations() as first:
        start = time.perf_counter()
        out = call()
        whole = time.perf_counter() - start
    with compilations() as again:
        start = time.perf_counter()
        call()
        warm = time.perf_counter() - start
    return {"whole_call_s": whole, "warm_s": warm, "compile_s": first.seconds, "compilations": first.total,
            "warm_compilations": again.total, "first": out}


def _problem(args):
    import jax

    import jaxlimit as jl

    data = jl.synthetic_problem(jax.random.key(0), args.points, args.dim, 0)
    return data, jl.TwoLayer(args.width, args.dim, "xavier", "tanh")


def worker_jaxlimit(args) -> dict:
    if args.devices == "off":  # JAX's own default: one multi-threaded CPU device
        os.environ["JAXLIMIT_CPU_CORES"] = "0"
    from jaxlimit.devices import enable_compilation_cache, use_cpu_cores

    if args.devices not in ("default", "off"):  # "default": what ``import jaxlimit`` sets up
        use_cpu_cores(None if args.devices == "cores" else int(args.devices))
    import jax

    import jaxlimit as jl

    if args.cache:
        enable_compilation_cache(args.cache)
    data, model = _problem(args)
    t_max = args.steps / args.width
    kw = dict(times=[t_max], n_members=args.members, seed=0,
              execution=jl.Execution(lanes=args.lanes or None, program=args.program or "auto"))
    timed = _first_and_warm(lambda: jl.run_ensemble(model, data, jl.Trainer(), **kw))
    result = timed.pop("first")
    return timed | {"devices": len(jax.devices()), "program": result.config["program"],
                    "lanes": result.config["lanes"]}


def _jax_default_device() -> None:
    """Keep JAX's own default device (multi-threaded on a CPU) in a naive or reference worker:
    they import jaxlimit for the problem, and ``import jaxlimit`` would otherwise set up its one
    single-threaded device per core, leaving an unsharded jit one core."""
    os.environ["JAXLIMIT_CPU_CORES"] = "0"


def worker_naive(args) -> dict:
    _jax_default_device()
    import jax
    import jax.numpy as jnp

    from jaxlimit.streams import member_keys, stream_key

    data, model = _problem(args)
    x, y = data.x_train.astype(jnp.float32), data.y_train.astype(jnp.float32)
    lr = model.learning_rates()
    m = data.n_train

    def loss(p, xk, yk):
        return 0.5 * (yk - model.apply(p, xk[None])[0]) ** 2

    def member(key):
        k_init, k_data = jax.random.split(key)
        p = model.init(k_init, jnp.float32)

        def step(p, k):
            j = jax.random.randint(jax.random.fold_in(k_data, k), (), 0, m, dtype=jnp.int32)
            g = jax.grad(loss)(p, x[j], y[j])
            return jax.tree_util.tree_map(lambda w, gi, s: w - s * gi, p, g, lr), None

        p, _ = jax.lax.scan(step, p, jnp.arange(args.steps))
        return model.apply(p, x)

    run = jax.jit(jax.vmap(member))
    keys = member_keys(stream_key(0, "members"), jnp.arange(args.members))
    timed = _first_and_warm(lambda: run(keys).block_until_ready())
    del timed["first"]
    return timed | {"devices": len(jax.devices())}


def _build_reference(build_dir: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    lib = build_dir / "libsgd_two_layer.so"
    cmd = [cc, "-O3", "-march=native", "-ffast-math", "-fopenmp", "-shared", "-fPIC",
           str(HERE / "reference" / "sgd_two_layer.c"), "-o", str(lib), "-lm"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    return lib


def worker_reference(args) -> dict:
    import numpy as np

    lib_path = _build_reference(Path(args.build_dir))
    if lib_path is None:
        return {"skipped": "no C compiler with OpenMP"}
    if args.width > 8192:
        return {"skipped": "the reference kernel's buffers hold widths up to 8192"}
    lib = ctypes.CDLL(str(lib_path))
    data, _ = _problem(args)
    x = np.ascontiguousarray(np.asarray(data.x_train, np.float32))
    y = np.ascontiguousarray(np.asarray(data.y_train, np.float32))
    rng = np.random.default_rng(0)
    c = rng.standard_normal((args.members, args.width)).astype(np.float32)
    wt = rng.standard_normal((args.members, args.dim, args.width)).astype(np.float32)
    out = np.zeros(args.members, np.float32)
    f = lib.sgd_ensemble
    f.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_float,
                  ctypes.c_float] + [ctypes.c_void_p] * 5

    def call():
        f(args.members, args.width, args.dim, args.points, args.steps, 0.5, 1.0, x.ctypes.data, y.ctypes.data,
          c.ctypes.data, wt.ctypes.data, out.ctypes.data)

    start = time.perf_counter()
    call()
    return {"whole_call_s": time.perf_counter() - start, "warm_s": time.perf_counter() - start,
            "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count()))}


def worker_torch(args) -> dict:
    try:
        import torch
    except ImportError:
        return {"skipped": "PyTorch is not installed"}
    torch.manual_seed(0)
    e, n, d, m = args.members, args.width, args.dim, args.points
    x = torch.randn(m, d) / d**0.5
    y = torch.randn(m)
    c = torch.randn(e, n)
    w = torch.randn(e, n, d)
    s, rate = n**-0.5, 1.0 / n * n**-0.5
    idx = torch.randint(0, m, (args.steps, e))
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(args.steps):
            xk = x[idx[k]]  # (E, d)
            u = torch.einsum("end,ed->en", w, xk)
            a = torch.tanh(u)
            g = rate * (y[idx[k]] - s * (a * c).sum(1))  # (E,)
            coef = g[:, None] * c * (1 - a * a)
            c += g[:, None] * a
            w += coef[:, :, None] * xk[:, None, :]
    t = time.perf_counter() - start
    return {"whole_call_s": t, "warm_s": t, "threads": torch.get_num_threads()}


def worker_user_code(args) -> dict:
    """A user's own JAX code in a process that imported jaxlimit (``--devices default``) or
    opted out (``off``): a 2048² float32 matrix product and a jitted elementwise map with a
    reduction over 2^24 entries, best of 5 warm calls each."""
    if args.devices == "off":
        os.environ["JAXLIMIT_CPU_CORES"] = "0"
    import jaxlimit  # noqa: F401 - what the import sets up is what is measured
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (2048, 2048), jnp.float32)
    v = jax.random.normal(jax.random.key(1), (1 << 24,), jnp.float32)
    jobs = {"matmul_2048_s": jax.jit(lambda a: a @ a), "map_reduce_16M_s": jax.jit(lambda v: jnp.sum(jnp.tanh(v) * v))}
    out = {"devices": len(jax.devices())}
    for name, fn in jobs.items():
        arg = a if name.startswith("matmul") else v
        fn(arg).block_until_ready()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn(arg).block_until_ready()
            times.append(time.perf_counter() - start)
        out[name] = min(times)
    return out


# Deep and user networks: full-batch gradient descent, three ways --------------------------


DEEP_STEP = 0.05  # dt of the deep MLP and the CNN (full-batch descent at α = 1)


def _family_problem(args):
    """The deep MLP (depth 3 hidden layers of ``width``, relu, NT's ntk parameterisation, σ_w = 1.4,
    no biases, d inputs, ``points`` training points) or the small CNN (a 3×3 convolution with
    ``width`` channels on 8×8 digits, relu, a dense readout; equinox, NTK learning rates 1/fan-in)."""
    import jax

    import jaxlimit as jl

    if args.family == "deep":
        data = jl.synthetic_problem(jax.random.key(0), args.points, args.dim, 0)
        return data, jl.MLP((args.width,) * 3, args.dim, "relu", W_std=1.4, b_std=0.0, time_step=DEEP_STEP)
    import equinox as eqx

    class SmallCNN(eqx.Module):
        conv: eqx.nn.Conv2d
        readout: eqx.nn.Linear

        def __init__(self, channels, key):
            k1, k2 = jax.random.split(key)
            self.conv = eqx.nn.Conv2d(1, channels, kernel_size=3, key=k1)
            self.readout = eqx.nn.Linear(channels * 36, "scalar", key=k2)

        def __call__(self, x):
            return self.readout(jax.nn.relu(self.conv(8.0 * x.reshape(1, 8, 8))).ravel())

    data = jl.digits_problem(args.points, 0, seed=0)
    fan_in = {"conv": 9, "readout": 36 * args.width}
    model = jl.from_equinox(lambda key: SmallCNN(args.width, key), time_step=DEEP_STEP, dim=64,
                            lr_scale=lambda path, leaf: 1.0 / fan_in[path.split(".")[1]])
    return data, model


def _timed_twice(fn, *a):
    import jax

    timed = _first_and_warm(lambda: jax_block(fn(*a)))
    del timed["first"]
    return timed | {"devices": len(jax.devices())}


def jax_block(x):
    import jax

    return jax.tree_util.tree_map(lambda a: a.block_until_ready(), x)


def worker_family_jaxlimit(args) -> dict:
    from jaxlimit.devices import use_cpu_cores

    use_cpu_cores(None)
    import jax

    import jaxlimit as jl

    data, model = _family_problem(args)
    kw = dict(times=[args.steps * DEEP_STEP], n_members=args.members, seed=0,
              execution=jl.Execution(progress=False), guards=jl.Guards(step_check="off"))
    trainer = jl.Trainer(alpha=1.0, method="fullbatch")
    timed = _first_and_warm(lambda: jl.run_ensemble(model, data, trainer, **kw))
    result = timed.pop("first")
    return timed | {"devices": len(jax.devices()), "program": result.config["program"],
                    "lanes": result.config["lanes"]}


def worker_family_naive(args) -> dict:
    """``jit(vmap(scan(grad)))`` of the same full-batch descent, JAX's default device."""
    _jax_default_device()
    import jax
    import jax.numpy as jnp

    from jaxlimit.streams import member_keys, stream_key

    data, model = _family_problem(args)
    x, y = jnp.asarray(data.x_train, jnp.float32), jnp.asarray(data.y_train, jnp.float32)
    lr = model.learning_rates()

    def loss(p):
        return jnp.mean(0.5 * (y - model.apply(p, x)) ** 2)

    def member(key):
        p = model.init(jax.random.split(key)[0], jnp.float32)

        def step(p, _):
            g = jax.grad(loss)(p)
            return jax.tree_util.tree_map(lambda w, gi, s: w - s * gi, p, g, lr), None

        p, _ = jax.lax.scan(step, p, None, length=args.steps)
        return model.apply(p, x)

    keys = member_keys(stream_key(0, "members"), jnp.arange(args.members))
    return _timed_twice(jax.jit(jax.vmap(member)), keys)


def worker_family_reference(args) -> dict:
    """The same descent written directly: every member's weights in one batched array, the forward
    and backward passes as batched matrix products (einsum), one jit over a fori_loop, JAX's
    default device."""
    _jax_default_device()
    import math

    import jax
    import jax.numpy as jnp

    data, _ = _family_problem(args)
    x, y = jnp.asarray(data.x_train, jnp.float32), jnp.asarray(data.y_train, jnp.float32)
    e, n, m = args.members, args.width, x.shape[0]
    keys = jax.random.split(jax.random.key(0), 4)
    if args.family == "deep":
        d = x.shape[1]
        sizes = [(n, d), (n, n), (n, n), (1, n)]
        ws = [jax.random.normal(k, (e, *s), jnp.float32) for k, s in zip(keys, sizes)]
        scale = [1.4 / math.sqrt(s[1]) for s in sizes]

        def step(_, ws):
            acts, zs = [x[None].repeat(e, 0)], []
            for l, (w, s) in enumerate(zip(ws, scale)):
                z = s * jnp.einsum("eok,emk->emo", w, acts[-1])
                zs.append(z)
                acts.append(jax.nn.relu(z) if l < 3 else z)
            delta = (zs[-1][..., 0] - y) / m  # (E, M)
            delta = delta[..., None]
            grads = [None] * 4
            for l in range(3, -1, -1):
                grads[l] = scale[l] * jnp.einsum("emo,emk->eok", delta, acts[l])
                if l:
                    delta = scale[l] * jnp.einsum("emo,eok->emk", delta, ws[l]) * (zs[l - 1] > 0)
            return [w - DEEP_STEP * g for w, g in zip(ws, grads)]

        state = ws
    else:
        images = 8.0 * x.reshape(m, 8, 8)
        patches = jnp.stack([images[:, i:i + 6, j:j + 6] for i in range(3) for j in range(3)], -1)  # (M,6,6,9)
        patches = patches.reshape(m, 36, 9)
        wc = jax.random.uniform(keys[0], (e, 9, n), jnp.float32, -1 / 3, 1 / 3)
        bc = jnp.zeros((e, n), jnp.float32)
        wr = jax.random.uniform(keys[1], (e, 36, n), jnp.float32, -1, 1) / math.sqrt(36 * n)
        br = jnp.zeros((e,), jnp.float32)

        def step(_, state):
            wc, bc, wr, br = state
            z = jnp.einsum("mpk,ekc->empc", patches, wc) + bc[:, None, None]
            a = jax.nn.relu(z)
            out = jnp.einsum("empc,epc->em", a, wr) + br[:, None]
            r = (out - y) / m  # (E, M)
            g_wr = jnp.einsum("em,empc->epc", r, a)
            g_br = r.sum(1)
            dz = r[:, :, None, None] * wr[:, None] * (z > 0)
            g_wc = jnp.einsum("empc,mpk->ekc", dz, patches)
            g_bc = dz.sum((1, 2))
            rate_conv, rate_readout = DEEP_STEP / 9, DEEP_STEP / (36 * n)
            return (wc - rate_conv * g_wc, bc - rate_conv * g_bc, wr - rate_readout * g_wr, br - rate_readout * g_br)

        state = (wc, bc, wr, br)
    run = jax.jit(lambda s: jax.lax.fori_loop(0, args.steps, step, s))
    return _timed_twice(run, state)


TWO_LAYER_CONTENDERS = ("jaxlimit", "naive", "reference", "torch")
"""The default problem's contenders (the family workers train the deep MLP and the CNN)."""

WORKERS = {"jaxlimit": worker_jaxlimit, "user_code": worker_user_code, "naive": worker_naive, "reference": worker_reference,
           "torch": worker_torch, "family_jaxlimit": worker_family_jaxlimit, "family_naive": worker_family_naive,
           "family_reference": worker_family_reference}


# The driver ------------------------------------------------------------------------------


def measure(contender: str, problem: dict, extra: list[str] | None = None, build_dir: str = "") -> dict:
    cmd = [sys.executable, __file__, "--worker", contender, "--build-dir", build_dir]
    for key, value in problem.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    cmd += extra or []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"skipped": f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '?'}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(problem: dict, contenders: list[str], repeats: int, build_dir: str) -> dict:
    """Best-of-``repeats`` warm times, contenders interleaved within each repeat."""
    best: dict[str, dict] = {}
    for _ in range(repeats):
        for name in contenders:
            r = measure(name, problem, build_dir=build_dir)
            if "skipped" in r:
                best.setdefault(name, r)
                continue
            if name not in best or "skipped" in best[name] or r["warm_s"] < best[name]["warm_s"]:
                best[name] = r
    work = problem["members"] * problem["width"] * problem["steps"]
    base = best.get("naive", {}).get("warm_s")
    ref = best.get("reference", {}).get("warm_s")
    for r in best.values():
        if "warm_s" in r:
            r["neuron_steps_per_s"] = work / r["warm_s"]
            r["vs_naive"] = base / r["warm_s"] if base else None
            r["fraction_of_reference"] = ref / r["warm_s"] if ref else None
    return best


def _compile_cells(r: dict) -> str:
    """The compile time, the programs compiled (first/warm call) and the whole first call."""
    if "compile_s" not in r:  # no compilation at call time (the C reference, PyTorch)
        return "— | — | —"
    return f"{r['compile_s']:.2f} s | {r['compilations']}/{r['warm_compilations']} | {r['whole_call_s']:.2f} s"


COMPILE_COLUMNS = "compile | compiled (first/warm) | whole first call"


def _row(name: str, r: dict) -> str:
    if "skipped" in r:
        return f"| {name} | skipped: {r['skipped']} | | | | | | |"
    frac = r.get("fraction_of_reference")
    vs = "" if r.get("vs_naive") is None else f"{r['vs_naive']:.2f}×"
    return (f"| {name} | {r['warm_s']:.2f} s | {_compile_cells(r)} | {r['neuron_steps_per_s']:.3g} | {vs} | "
            f"{'' if frac is None else f'{100 * frac:.0f} %'} |")


def library_default(problem: dict, repeats: int, build_dir: str) -> dict:
    """Fresh processes with no set-up call: ``import jaxlimit`` at its default, with
    ``JAXLIMIT_CPU_CORES=0`` (JAX's one multi-threaded device), and as the command line runs
    (``use_cpu_cores()``); and a user's own JAX code with and without the default. Interleaved,
    best of ``repeats``."""
    arms = {"import default": ("jaxlimit", "default"), "JAXLIMIT_CPU_CORES=0": ("jaxlimit", "off"),
            "command line (use_cpu_cores)": ("jaxlimit", "cores"),
            "user code, import default": ("user_code", "default"), "user code, JAXLIMIT_CPU_CORES=0": ("user_code", "off")}
    best: dict[str, dict] = {}
    for _ in range(repeats):
        for label, (worker, devices) in arms.items():
            r = measure(worker, problem, ["--devices", devices], build_dir)
            for key, value in r.items():
                if key.endswith("_s") and isinstance(value, float):
                    best.setdefault(label, {})[key] = min(value, best.get(label, {}).get(key, float("inf")))
                else:
                    best.setdefault(label, {})[key] = value
    print("\nLibrary default: fresh processes, no set-up call (best of %d, interleaved)\n" % repeats)
    print(f"| process | devices | warm ensemble | {COMPILE_COLUMNS} | vs command line |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    cli = best.get("command line (use_cpu_cores)", {}).get("warm_s")
    for label in ("import default", "JAXLIMIT_CPU_CORES=0", "command line (use_cpu_cores)"):
        r = best.get(label, {})
        if "warm_s" in r:
            print(f"| {label} | {r['devices']} | {r['warm_s']:.2f} s | {_compile_cells(r)} | "
                  f"{cli / r['warm_s'] if cli else float('nan'):.2f} |")
    print("\n| user's own JAX code | devices | 2048² matmul | tanh map + sum, 2^24 |")
    print("| --- | --- | --- | --- |")
    for label in ("user code, import default", "user code, JAXLIMIT_CPU_CORES=0"):
        r = best.get(label, {})
        if "matmul_2048_s" in r:
            print(f"| {label} | {r['devices']} | {1e3 * r['matmul_2048_s']:.1f} ms | {1e3 * r['map_reduce_16M_s']:.1f} ms |")
    return best


def family_table(family: str, problem: dict, repeats: int, build_dir: str) -> dict:
    """The deep MLP or the CNN: jaxlimit (one device per core, as the command line) against the naive
    ``jit(vmap(scan(grad)))`` and the direct batched reference, interleaved, best of ``repeats``."""
    names = {"family_jaxlimit": "jaxlimit", "family_naive": "naive", "family_reference": "reference"}
    problem = dict(problem, family=family)
    best = compare(problem, list(names), repeats, build_dir)
    best = {names[k]: v for k, v in best.items()}
    naive, ref = best.get("naive", {}).get("warm_s"), best.get("reference", {}).get("warm_s")
    for r in best.values():
        if "warm_s" in r:
            r["vs_naive"] = naive / r["warm_s"] if naive else None
            r["fraction_of_reference"] = ref / r["warm_s"] if ref else None
    what = {"deep": "deep MLP, 3 hidden layers", "cnn": "CNN on digits, channels"}[family]
    print(f"\n{what} = {problem['width']}: {problem['members']} members, {problem['points']} points, "
          f"{problem['steps']} full-batch steps (best of {repeats}, interleaved)\n")
    print(f"| engine | warm run | {COMPILE_COLUMNS} | vs naive | of reference |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in best.items():
        if "warm_s" not in r:
            print(f"| {name} | skipped: {r.get('skipped')} | | | | | |")
            continue
        frac = r.get("fraction_of_reference")
        print(f"| {name} | {r['warm_s']:.2f} s | {_compile_cells(r)} | {r['vs_naive']:.2f}× | "
              f"{'' if frac is None else f'{100 * frac:.0f} %'} |")
    return best


def print_table(title: str, best: dict) -> None:
    print(f"\n{title}\n")
    print(f"| engine | warm run | {COMPILE_COLUMNS} | neuron-steps/s | vs naive | of reference |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in best.items():
        print(_row(name, r))
    j = best.get("jaxlimit", {})
    if "whole_call_s" in j:
        print(f"\njaxlimit ran on {j['devices']} device(s), program {j['program']}, lanes {j['lanes']}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--build-dir", default="", help=argparse.SUPPRESS)
    p.add_argument("--members", type=int, default=4096)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--points", type=int, default=16)
    p.add_argument("--steps", type=int, default=2048)
    p.add_argument("--lanes", type=int, default=0, help="jaxlimit's vmap width (0: its default)")
    p.add_argument("--program", default="", help="jaxlimit's member program ('' : auto)")
    p.add_argument("--devices", default="cores",
                   help="jaxlimit's CPU devices: cores, default (what import sets up), off, or a number")
    p.add_argument("--library-default-only", action="store_true",
                   help="only the fresh-process comparison of the library's default")
    p.add_argument("--cache", default="", help="jaxlimit's compilation cache directory ('' : none)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes, to check that everything runs")
    p.add_argument("--no-tables", action="store_true", help="only the default problem")
    p.add_argument("--json", default=None, help="also write every figure to this file")
    p.add_argument("--family", default="two-layer", choices=["two-layer", "deep", "cnn"], help=argparse.SUPPRESS)
    p.add_argument("--families-only", action="store_true",
                   help="only the deep MLP and the CNN tables (full batch, against naive and the direct reference)")
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return {}

    build = tempfile.mkdtemp(prefix="jaxlimit-ref-")
    base = {"members": args.members, "width": args.width, "dim": args.dim, "points": args.points,
            "steps": args.steps}
    if args.quick:
        base = {"members": 256, "width": 256, "dim": 8, "points": 16, "steps": 256}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    if args.families_only:
        deep = {"members": 64, "width": 128 if args.quick else 512, "dim": 8, "points": 16,
                "steps": 32 if args.quick else 64}
        cnn = {"members": 64 if args.quick else 256, "width": 8 if args.quick else 32, "dim": 64, "points": 16,
               "steps": 32 if args.quick else 256}
        return {"deep": family_table("deep", deep, args.repeats, build),
                "cnn": family_table("cnn", cnn, args.repeats, build)}
    if args.library_default_only:
        print(f"Problem {base}")
        return {"library_default": library_default(base, args.repeats, build)}
    figures = {"default": compare(base, list(TWO_LAYER_CONTENDERS), args.repeats, build)}
    print_table(f"Default problem {base}", figures["default"])
    figures["library_default"] = library_default(base, args.repeats, build)
    if not args.no_tables:
        steps = 64 if args.quick else 512
        tables = {
            "members": [dict(base, members=e, steps=steps) for e in ((256, 1024) if args.quick else
                                                                     (256, 1024, 4096, 16384))],
            "width": [dict(base, members=256 if args.quick else 1024, width=n, steps=steps)
                      for n in ((128, 512) if args.quick else (128, 512, 2048, 8192))],
            "dim": [dict(base, members=256 if args.quick else 1024, dim=d, points=32, steps=steps)
                    for d in ((8, 64) if args.quick else (8, 64, 784))],
        }
        for axis, problems in tables.items():
            figures[axis] = []
            for prob in problems:
                best = compare(prob, ["jaxlimit", "naive", "reference"], 1 if args.quick else 2, build)
                figures[axis].append({"problem": prob, "results": best})
                print_table(f"Scaling in {axis}: {prob}", best)
    shutil.rmtree(build, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
