"""Throughput of the ensemble engine: neuron-steps per second and peak memory.

Default problem (issue 2): 4 096 members, width 1 024, d = 8, tanh, Xavier
scaling, online SGD for 2 048 steps (t = 2). One neuron-step is one hidden
unit of one member advanced by one SGD step. The first (compiling) run is
timed separately from a second, warm run.

    python benchmarks/ensemble_throughput.py [--members 4096 --width 1024 ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time

import jax
import jax.numpy as jnp

import jaxlimit as jl


def peak_memory_bytes() -> dict:
    """Host peak resident memory, and the accelerator's peak where it reports one."""
    out = {"host_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    stats = jax.devices()[0].memory_stats() if hasattr(jax.devices()[0], "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        out["device_peak_bytes"] = stats["peak_bytes_in_use"]
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=4096)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--steps", type=int, default=2048)
    p.add_argument("--points", type=int, default=16)
    p.add_argument("--lanes", type=int, default=jl.training.DEFAULT_LANES)
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--method", default="online")
    p.add_argument("--repeats", type=int, default=1, help="warm runs after the first")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    args = p.parse_args(argv)

    data = jl.synthetic_problem(jax.random.key(0), args.points, args.dim, 0)
    model = jl.TwoLayer(args.width, args.dim, "xavier", "tanh")
    trainer = jl.Trainer(alpha=1.0, method=args.method, batch_size=4)
    t_max = args.steps / args.width
    kw = dict(times=[t_max / 2, t_max], n_members=args.members, seed=0,
              chunk_size=args.chunk_size, lanes=args.lanes, dtype=jnp.float32)

    start = time.perf_counter()
    result = jl.run_ensemble(model, data, trainer, **kw)
    first = time.perf_counter() - start
    warm = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        jl.run_ensemble(model, data, trainer, **kw)
        warm.append(time.perf_counter() - start)
    best = min(warm) if warm else first
    neuron_steps = args.members * args.width * int(result.steps[-1])
    figures = {
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "cpu": platform.processor() or platform.machine(),
        "members": args.members, "width": args.width, "dim": args.dim, "steps": int(result.steps[-1]),
        "method": args.method, "lanes": args.lanes, "chunk_size": args.chunk_size,
        "first_run_seconds": round(first, 3),
        "warm_run_seconds": round(best, 3),
        "neuron_steps_per_second": neuron_steps / best,
        "member_steps_per_second": args.members * int(result.steps[-1]) / best,
        "diverged": result.n_diverged,
        **peak_memory_bytes(),
    }
    for k, v in figures.items():
        print(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
