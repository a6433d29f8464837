"""Where ensembles run: one single-threaded CPU device per core, and the compilation cache.

On a CPU, XLA's thread pool adds little to one ensemble step (the step is a
chain of small operations), while independent single-threaded streams, one
per core, scale almost linearly. :func:`use_cpu_cores` therefore asks XLA for
one host device per core, each single-threaded; the engine shards member
blocks over them (bitwise the same numbers as one device). It must run before
JAX creates its backends: the command line calls it first thing.

``import jaxlimit`` does the same (:func:`configure_at_import`) when JAX has
not started yet, no accelerator plugin is installed and ``XLA_FLAGS`` does not
already set a device count, so a script or notebook runs at the command line's
speed with no set-up call. The first ensemble says so in one line.
``JAXLIMIT_CPU_CORES=0`` in the environment keeps JAX's own default (one
multi-threaded CPU device); ``JAXLIMIT_CPU_CORES=N`` asks for N devices. When
JAX started first, the first ensemble says once how to get the speed.

:func:`enable_compilation_cache` turns on JAX's persistent compilation cache,
so the same shapes compiled in an earlier run (or an earlier call) load in a
fraction of the compile time. :func:`compilations` counts the programs XLA
compiles while it is active (a repeated call with the same shapes compiles none).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
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


_ENV = "JAXLIMIT_CPU_CORES"
_state = {"configured_at_import": 0, "explicit": False, "noticed": False}


def _accelerator_possible() -> bool:
    """A PJRT plugin (CUDA, ROCm, TPU, …) is installed, or JAX_PLATFORMS names something else
    than the CPU: then the engine's devices are not host devices and nothing is configured."""
    import importlib.util

    platforms = os.environ.get("JAX_PLATFORMS", "").strip().lower()
    if platforms:
        return platforms != "cpu"
    return any(importlib.util.find_spec(name) is not None
               for name in ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin",
                            "libtpu"))


def _requested() -> int | None:
    """``JAXLIMIT_CPU_CORES`` as a device count: 0 (off), N, or None (unset: one per core)."""
    value = os.environ.get(_ENV, "").strip().lower()
    if not value:
        return None
    if value in ("off", "no", "false"):
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        return None


def configure_at_import() -> int:
    """At ``import jaxlimit``: one single-threaded CPU device per core, when that is safe
    (see the module docstring). Returns the device count set up, 0 when nothing was done."""
    import sys

    requested = _requested()
    if requested == 0 or _DEVICE_FLAG in os.environ.get("XLA_FLAGS", ""):
        return 0
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return 0
    if _accelerator_possible():
        return 0
    n = cpu_cores() if requested is None else requested
    if n < 2:
        return 0
    _state["configured_at_import"] = use_cpu_cores(n, _explicit=False)
    return _state["configured_at_import"]


def notice_once() -> None:
    """Before the first ensemble on a CPU, one line on standard error about its devices:
    that ``import jaxlimit`` set up one per core (unless the caller chose, as the command line
    does), or how to get them when JAX started before jaxlimit was imported."""
    import sys

    if _state["noticed"] or _state["explicit"]:
        return
    _state["noticed"] = True
    import jax

    if jax.default_backend() != "cpu" or jax.process_count() > 1:
        return
    n = len(jax.local_devices())
    if _state["configured_at_import"] and n == _state["configured_at_import"]:
        per_core = ", one per core," if n == cpu_cores() else ""
        print(f"jaxlimit: {n} single-threaded CPU devices{per_core} set up at import "
              f"({_ENV}=0 before importing jaxlimit keeps JAX's one multi-threaded device)", file=sys.stderr)
    elif (n == 1 and cpu_cores() > 1 and _requested() != 0
          and _DEVICE_FLAG not in os.environ.get("XLA_FLAGS", "")):
        print(f"jaxlimit: JAX started before jaxlimit was imported, so ensembles run on one CPU device; "
              f"import jaxlimit (or call jaxlimit.use_cpu_cores()) before the first JAX computation to use "
              f"all {cpu_cores()} cores", file=sys.stderr)


def use_cpu_cores(n: int | None = None, *, _explicit: bool = True) -> int:
    """Ask XLA for ``n`` single-threaded host devices (default: one per core).

    Leaves an explicit ``--xla_force_host_platform_device_count`` in
    ``XLA_FLAGS`` alone. Returns the device count requested.

    Raises:
        InputError: when JAX's backends already exist (the flags would be ignored).
    """
    import sys

    if _explicit:
        _state["explicit"] = True
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


COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
"""JAX's monitoring event of one backend compilation (or persistent-cache load) of a program,
recorded with the program's name, e.g. ``jit(advance)``."""


@dataclasses.dataclass
class Compilations:
    """What :func:`compilations` saw: ``count`` per program name, ``seconds`` in all."""

    count: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.count.values())


@contextlib.contextmanager
def compilations():
    """Count the XLA compilations while the block runs (``jax.monitoring``'s backend-compile
    event, one per compiled program, a persistent-cache load included), by program name."""
    import jax

    seen = Compilations()

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            seen.count[kwargs.get("fun_name", "?")] += 1
            seen.seconds += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


__all__ = ["Compilations", "compilations", "configure_at_import", "cpu_cores", "enable_compilation_cache",
           "notice_once", "use_cpu_cores"]
