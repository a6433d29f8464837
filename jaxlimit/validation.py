"""Generic input validation shared by the library and the experiment configurations.

Every check refuses bad input with one :class:`~jaxlimit.errors.InputError`
line naming the argument (a :class:`ConfigError`, whose text reads
``"<name> <problem>"``): :func:`require_int`, :func:`require_real`,
:func:`check_value` against a :class:`Spec` (the option factories of
:mod:`jaxlimit.config` record one per field), :func:`validate_times`, and
:data:`MAX_SEED`, the largest seed any random stream takes. Light module: no
JAX (numpy is imported when times are checked), so ``jaxlimit --help`` stays
fast.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from pathlib import Path
from typing import Any

from jaxlimit.errors import InputError

MAX_SEED = 2**63 - 1
"""The largest seed (seeds are integers in [0, 2^63 − 1])."""


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
    computed: Any = None  # a jaxlimit.config.Computed: the default of a None value, computed by the code that applies it


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



def validate_times(times):
    """Sorted, finite, non-negative save times with t = 0 first (a float64 numpy array)."""
    import numpy as np

    try:
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"times must be a list of numbers, got {times!r}") from None
    if t.ndim != 1 or t.size == 0:
        raise InputError("times must be a non-empty 1-D list of numbers")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise InputError("times must be finite and non-negative")
    if np.any(np.diff(t) <= 0):
        raise InputError("times must be strictly increasing")
    if t[0] != 0.0:
        t = np.concatenate([[0.0], t])
    return t


__all__ = ["MAX_SEED", "ConfigError", "Spec", "check_value", "require_int", "require_real", "validate_times"]
