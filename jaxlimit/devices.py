"""Where ensembles run: one single-threaded CPU device per core, and the compilation cache.

On a CPU, XLA's thread pool adds little to one ensemble step (the step is a
chain of small operations), while independent single-threaded streams, one
per core, scale almost linearly. :func:`use_cpu_cores` therefore asks XLA for
one host device per core, each single-threaded; the engine shards member
blocks over them (bitwise the same numbers as one device). It must run before
JAX creates its backends: the command line calls it first thing; a library
user calls it before the first JAX computation.

:func:`enable_compilation_cache` turns on JAX's persistent compilation cache,
so the same shapes compiled in an earlier run (or an earlier call) load in a
fraction of the compile time.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxlimit.errors import InputError

_DEVICE_FLAG = "--xla_force_host_platform_device_count"
_SINGLE_THREAD = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def use_cpu_cores(n: int | None = None) -> int:
    """Ask XLA for ``n`` single-threaded host devices (default: one per core).

    Leaves an explicit ``--xla_force_host_platform_device_count`` in
    ``XLA_FLAGS`` alone. Returns the device count requested.

    Raises:
        InputError: when JAX's backends already exist (the flags would be ignored).
    """
    import sys

    n = cpu_cores() if n is None else int(n)
    if n < 1:
        raise InputError(f"the number of CPU devices must be positive, got {n}")
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            raise InputError("use_cpu_cores() must run before the first JAX computation")
    flags = os.environ.get("XLA_FLAGS", "")
    if _DEVICE_FLAG in flags:
        return int(flags.split(_DEVICE_FLAG + "=")[1].split()[0])
    extra = [f"{_DEVICE_FLAG}={n}"] + ([] if n == 1 else list(_SINGLE_THREAD))
    os.environ["XLA_FLAGS"] = " ".join([flags, *extra]).strip()
    return n


def enable_compilation_cache(directory: str | Path | None = None) -> Path:
    """Keep compiled programs on disk (default ``$XDG_CACHE_HOME/jaxlimit/xla``)."""
    import jax

    if directory is None:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        directory = base / "jaxlimit" / "xla"
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return path  # an unwritable cache only costs compile time
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


__all__ = ["cpu_cores", "enable_compilation_cache", "use_cpu_cores"]
