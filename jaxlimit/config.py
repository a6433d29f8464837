"""Typed, immutable experiment configurations that refuse bad input when built.

An experiment's configuration is a frozen dataclass whose fields are made by
the option factories below (:func:`integer`, :func:`real`, :func:`choice`, …).
Each factory records the option's help text and its constraints, so

* building the object validates every field (type, range, choices, distinct
  list entries) and then the experiment's own combinations (``check``), and a
  failure raises :class:`ConfigError` naming the field, before anything is
  computed or written;
* the command line is generated from the same fields (``--width`` for the
  field ``width``), with one name per concept across all commands.

This module imports nothing heavy (no JAX), so ``jaxlimit --help`` is fast.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, ClassVar

# Generic validation lives in jaxlimit.validation; re-exported here for compatibility.
from jaxlimit.validation import (  # noqa: F401
    MAX_SEED, ConfigError, Spec, check_value, require_int, require_real,
)


@dataclasses.dataclass(frozen=True)
class Computed:
    """A default computed from the rest of the configuration (the option's value is then None).

    ``text(config_type)`` is what ``--help`` shows and ``resolve(config)`` is the
    value the run uses (None: only known when the run starts); both come from
    here, so the help cannot drift from the code that applies the default.
    """

    text: Any  # str, or a function of the configuration class
    resolve: Any = None  # function of the configuration, or None

    def describe(self, config_type: type) -> str:
        return self.text(config_type) if callable(self.text) else str(self.text)

    def value(self, config: "Config") -> Any:
        return None if self.resolve is None else self.resolve(config)


def _field(default, spec: Spec):
    return dataclasses.field(default=default, metadata={"spec": spec})


def integer(default: int | None, help: str, *, low: int = 1, high: int, nullable: bool = False,
            group: str = "options", metavar: str | None = None, computed: Computed | None = None):
    """An integer option in [low, high] (``None`` allowed when ``nullable``; ``computed`` then says
    what None means)."""
    return _field(default, Spec("int", help, low, high, nullable=nullable or computed is not None, group=group,
                                metavar=metavar, computed=computed))


def real(default: float | None, help: str, *, low: float = 0.0, high: float, low_open: bool = True,
         nullable: bool = False, group: str = "options", metavar: str | None = None,
         computed: "Computed | None" = None):
    """A finite real option in (low, high] (or [low, high] with ``low_open=False``)."""
    return _field(default, Spec("float", help, low, high, low_open, nullable=nullable, group=group,
                                metavar=metavar, computed=computed))


def choice(default: str, help: str, choices: tuple[str, ...], *, group: str = "options"):
    """One of a fixed set of names."""
    return _field(default, Spec("str", help, choices=tuple(choices), group=group))


def text(default: str | None, help: str, *, nullable: bool = False, group: str = "options",
         metavar: str | None = None):
    """A free string (for example an activation name or a γ, checked by ``check``)."""
    return _field(default, Spec("str", help, nullable=nullable, group=group, metavar=metavar))


def flag(help: str, *, group: str = "options"):
    """A boolean switch, off by default."""
    return _field(False, Spec("bool", help, group=group))


def integers(default: tuple[int, ...] | None, help: str, *, low: int = 1, high: int, min_len: int = 1,
             max_len: int = 64, nullable: bool = False, group: str = "options"):
    """A comma-separated list of distinct integers in [low, high], kept in increasing order."""
    return _field(default, Spec("ints", help, low, high, nullable=nullable, min_len=min_len,
                                max_len=max_len, group=group, metavar="N,N,..."))


def reals(default: tuple[float, ...] | None, help: str, *, low: float = 0.0, high: float,
          low_open: bool = False, min_len: int = 1, max_len: int = 64, nullable: bool = False,
          group: str = "options", computed: Computed | None = None):
    """A comma-separated list of distinct finite reals in range, kept in increasing order."""
    return _field(default, Spec("floats", help, low, high, low_open, nullable=nullable or computed is not None,
                                min_len=min_len, max_len=max_len, group=group, metavar="X,X,...",
                                computed=computed))


def vector(default: tuple[float, ...], help: str, *, length: int, low: float = 0.0, high: float,
           low_open: bool = False, group: str = "options", metavar: str | None = None):
    """A comma-separated list of exactly ``length`` finite reals in range, kept in the given order
    (entries may repeat): the components of one quantity, such as the three layers' rates."""
    return _field(default, Spec("vector", help, low, high, low_open, min_len=length, max_len=length,
                                group=group, metavar=metavar or ",".join(["X"] * length)))


def directory(default: str | None, help: str, *, nullable: bool = False, group: str = "output",
              report: bool = False):
    """A directory that the run will write (checked: not a file, writable; with ``report``, not a
    directory holding files other than an earlier report, which would be replaced)."""
    return _field(default, Spec("path", help, nullable=nullable, group=group, metavar="DIR", report=report))


def physical_memory_bytes() -> int:
    """The machine's memory (the budget against which sizes are refused)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Base class of experiment configurations (subclass with ``@dataclasses.dataclass(frozen=True, kw_only=True)``).

    Subclasses declare fields with the option factories and may override
    :meth:`check` for combinations and :meth:`estimate_bytes` for the memory
    the run will need (refused above 80 % of the machine's memory). Every
    configuration has the options of a run over several processes
    (``jax.distributed``): ``--distributed`` alone takes the cluster from the
    environment (SLURM, Open MPI), or ``--coordinator``, ``--num-processes`` and
    ``--process-id`` name it (for example on one machine, on the loopback address).
    """

    NAME: ClassVar[str] = ""  # the command, e.g. "xavier" or "sweep xavier"
    HELP: ClassVar[str] = ""  # one line for ``jaxlimit --help``
    RUNNER: ClassVar[str] = ""  # the module whose ``run(config) -> Report`` runs it

    distributed: bool = flag("run over several processes with jax.distributed (cluster from the environment, "
                             "or --coordinator, --num-processes, --process-id); process 0 writes the report",
                             group="processes")
    coordinator: str | None = text(None, "address host:port of process 0 (implies --distributed)", nullable=True,
                                   group="processes", metavar="HOST:PORT")
    num_processes: int | None = integer(None, "number of processes (with --coordinator)", low=1, high=65536,
                                        nullable=True, group="processes")
    process_id: int | None = integer(None, "this process's index, 0 … num_processes − 1 (with --coordinator)",
                                     low=0, high=65535, nullable=True, group="processes")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            spec = f.metadata.get("spec")
            if spec is not None:
                object.__setattr__(self, f.name, check_value(f.name, spec, getattr(self, f.name)))
        manual = (self.coordinator, self.num_processes, self.process_id)
        if any(v is not None for v in manual):
            if any(v is None for v in manual):
                missing = [n for n, v in zip(("coordinator", "num_processes", "process_id"), manual) if v is None]
                raise ConfigError(missing[0], "must be given together with --coordinator, --num-processes and "
                                  "--process-id")
            if self.process_id >= self.num_processes:
                raise ConfigError("process_id", f"must be below --num-processes = {self.num_processes}, "
                                  f"got {self.process_id}")
            if ":" not in self.coordinator:
                raise ConfigError("coordinator", f"must be host:port, got {self.coordinator!r}")
        self.check()
        need = self.estimate_bytes()
        limit = 0.8 * physical_memory_bytes()
        if need > limit:
            raise ConfigError(self.size_option(), f"makes the run need about {need / 2**30:.3g} GiB of memory, "
                              f"more than 80% of this machine's {physical_memory_bytes() / 2**30:.3g} GiB")

    def check(self) -> None:
        """Combinations of options; raise :class:`ConfigError` naming a field."""

    def estimate_bytes(self) -> float:
        """A conservative estimate of the run's peak memory."""
        return 0.0

    def size_option(self) -> str:
        """The option named when the memory estimate is too large."""
        return "ensemble"

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def resolve(self, name: str) -> Any:
        """The value the run uses for option ``name``: the given one, or its computed default."""
        value = getattr(self, name)
        spec = next((f.metadata.get("spec") for f in dataclasses.fields(self) if f.name == name), None)
        if value is None and spec is not None and spec.computed is not None:
            return spec.computed.value(self)
        return value

    def resolved(self) -> dict:
        """:meth:`as_dict` with every computed default filled in as the run uses it (report.json)."""
        return {name: self.resolve(name) for name in self.as_dict()}


def specs(config_type: type) -> list[tuple[str, Spec, Any]]:
    """(name, spec, default) of every option of a configuration class, in order."""
    out = []
    for f in dataclasses.fields(config_type):
        spec = f.metadata.get("spec")
        if spec is not None:
            out.append((f.name, spec, f.default))
    return out


__all__ = ["Computed", "Config", "ConfigError", "Spec", "check_value", "choice", "directory", "flag", "integer",
           "integers", "physical_memory_bytes", "real", "reals", "require_int", "require_real", "specs", "text",
           "vector"]
