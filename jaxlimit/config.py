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
import math
import numbers
import os
from pathlib import Path
from typing import Any, ClassVar

from jaxlimit.errors import InputError

MAX_SEED = 2**63 - 1


class ConfigError(InputError):
    """A bad value for one option: ``str(err)`` reads ``"<field> <problem>"``."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")

    def for_command_line(self) -> str:
        return f"--{self.field.replace('_', '-')} {self.problem}"


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one option is parsed, checked and documented."""

    kind: str  # "int", "float", "str", "bool", "ints", "floats", "vector", "path"
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    min_len: int = 1
    max_len: int = 64
    metavar: str | None = None
    group: str = "options"
    report: bool = False  # a report directory: refuse one that holds other files
    computed: "Computed | None" = None  # the default of a None value, computed by the code that applies it


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
         nullable: bool = False, group: str = "options", metavar: str | None = None):
    """A finite real option in (low, high] (or [low, high] with ``low_open=False``)."""
    return _field(default, Spec("float", help, low, high, low_open, nullable=nullable, group=group,
                                metavar=metavar))


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


def _check_number(name: str, spec: Spec, value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(name, f"must be {what}, got {value!r}")
    if isinstance(value, numbers.Integral):
        result: float | int = int(value)
    else:
        result = float(value)
        if not math.isfinite(result):
            raise ConfigError(name, f"must be a finite number, got {value!r}")
    if spec.kind in ("int", "ints"):
        if not float(result).is_integer():
            raise ConfigError(name, f"must be an integer, got {value!r}")
        result = int(result)
    if spec.low is not None and (result < spec.low or (spec.low_open and result <= spec.low)):
        bound = f"> {spec.low:g}" if spec.low_open else f"≥ {spec.low:g}"
        raise ConfigError(name, f"must be {bound}, got {value!r}")
    if spec.high is not None and result > spec.high:
        raise ConfigError(name, f"must be at most {spec.high:g}, got {value!r}")
    return result


def _check_directory(name: str, value: Any, report: bool) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ConfigError(name, f"must name a directory, got {value!r}")
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(name, f"{str(value)!r} is a file, not a directory")
    ancestor = path if path.exists() else next((p for p in path.absolute().parents if p.exists()), None)
    if ancestor is None or not ancestor.is_dir():
        raise ConfigError(name, f"{str(value)!r} cannot be created")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(name, f"{str(value)!r} is not writable")
    if report and path.is_dir() and any(path.iterdir()) and not (path / "report.json").exists():
        raise ConfigError(name, f"{str(value)!r} holds files that are not a jaxlimit report; "
                          "choose a new or empty directory")
    return str(value)


def check_value(name: str, spec: Spec, value: Any) -> Any:
    """The validated (and normalised) value of one option."""
    if value is None:
        if spec.nullable:
            return None
        raise ConfigError(name, "must be given")
    if spec.kind in ("int", "float"):
        return _check_number(name, spec, value, "an integer" if spec.kind == "int" else "a number")
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(name, f"must be True or False, got {value!r}")
        return value
    if spec.kind == "str":
        if not isinstance(value, str) or not value:
            raise ConfigError(name, f"must be a non-empty string, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(name, f"must be one of {', '.join(spec.choices)}, got {value!r}")
        return value
    if spec.kind == "path":
        return _check_directory(name, value, spec.report)
    if spec.kind in ("ints", "floats", "vector"):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(name, f"must be a list of numbers, got {value!r}")
        items = [_check_number(name, spec, v, "a list of integers" if spec.kind == "ints" else
                               "a list of numbers") for v in value]
        if spec.kind == "vector":
            if len(items) != spec.min_len:
                raise ConfigError(name, f"must have exactly {spec.min_len} entries, got {len(items)}")
            return tuple(float(v) for v in items)
        if not spec.min_len <= len(items) <= spec.max_len:
            raise ConfigError(name, f"must have {spec.min_len} to {spec.max_len} entries, got {len(items)}")
        if len(set(items)) != len(items):
            raise ConfigError(name, f"has a repeated entry: {', '.join(f'{v:g}' for v in value)}")
        return tuple(sorted(items))
    raise AssertionError(spec.kind)


def require_int(value: Any, name: str, *, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int in [low, high], or a :class:`ConfigError` naming ``name``."""
    return check_value(name, Spec("int", "", low, high), value)


def require_real(value: Any, name: str, *, low: float | None = 0.0, high: float | None = None,
                 low_open: bool = True) -> float:
    """``value`` as a finite float in (low, high] (or [low, high]), or a :class:`ConfigError`."""
    return check_value(name, Spec("float", "", low, high, low_open), value)


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
