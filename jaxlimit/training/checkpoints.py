"""Saved work that can never be mistaken for another run's.

A run's **fingerprint** covers everything that determines a member's numbers:
the values of the data (a hash of the arrays), the model and its activation,
the trainer with its loss and optax optimizer, the dtype, the members' random
stream, the vmap width (``lanes``), the observables, and the versions of
jaxlimit, jax and jaxlib and the backend. It does *not* cover the ensemble
size or the saved times: a run with more members or later times reuses every
block and segment already computed.

Things are identified by what they are, never by a name alone:

* numbers, strings, arrays (a SHA-256 of their bytes, shape and dtype),
  dataclasses and equinox modules (their class and fields, recursively);
* an activation or a loss by its values on a fixed probe grid (so two
  different lambdas, or a lambda and a built-in, are told apart);
* a Python function (an optax transformation, an observable) by its module,
  qualified name, bytecode and constants, and the contents of its closure,
  recursively; a library function that is importable by its name (``jnp.tanh``)
  by that name.

Anything else inside a closure (an arbitrary object) cannot be identified
reliably, so checkpointing such a run is refused with a one-line reason.

Layout of a store: ``DIR/<fingerprint>/run.json`` describes the run, and
``DIR/<fingerprint>/block-<b>.npz`` holds member block b (members
b·lanes … (b+1)·lanes − 1): its records (outputs, loss, observables) at every
step count reached so far, and the training state at the latest of them.
Every write goes to a temporary file that is renamed into place, so a kill or
a full disk leaves the previous version readable.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import importlib
import io
import json
import math
import os
import shutil
import tempfile
import types
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError

FORMAT_VERSION = 2


class NotFingerprintable(InputError):
    """Part of a run cannot be identified reliably, so it cannot be checkpointed."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _array_id(a) -> dict:
    a = np.ascontiguousarray(np.asarray(a))
    return {"array": _sha(a.tobytes()), "shape": list(a.shape), "dtype": a.dtype.str}


# The probe grid on which elementwise functions (activations, losses) are identified.
_GRID = np.concatenate([np.linspace(-6.0, 6.0, 241), [-1e-3, 1e-3, 0.123, -2.71, 3.14, 7.5, -9.0]])


def _probe(fn, *args) -> str:
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        try:
            values = [np.asarray(fn(*[jnp.asarray(a, jnp.float32) for a in args]), np.float32)]
        except Exception as e:  # noqa: BLE001 - any failure means "cannot identify"
            raise NotFingerprintable(f"cannot evaluate {getattr(fn, '__name__', fn)!r} on a probe grid "
                                     f"to identify it ({type(e).__name__})") from None
    return _sha(b"".join(np.ascontiguousarray(v).tobytes() for v in values))


def _importable_name(obj) -> str | None:
    """``module.qualname`` if importing it gives back this very object."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}.{qualname}" if target is obj else None


def _code_id(code: types.CodeType, seen: set) -> dict:
    consts = [_code_id(c, seen) if isinstance(c, types.CodeType) else describe(c, seen) for c in code.co_consts]
    return {"code": _sha(code.co_code), "names": list(code.co_names), "consts": consts}


def _function_id(fn: types.FunctionType, seen: set) -> dict:
    out: dict = {"function": f"{fn.__module__}.{fn.__qualname__}", "code": _code_id(fn.__code__, seen)}
    if fn.__defaults__:
        out["defaults"] = [describe(d, seen) for d in fn.__defaults__]
    if fn.__kwdefaults__:
        out["kwdefaults"] = {k: describe(v, seen) for k, v in sorted(fn.__kwdefaults__.items())}
    if fn.__closure__:
        cells = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell
                content = None
            cells[name] = describe(content, seen)
        out["closure"] = cells
    return out


def describe(obj: Any, seen: set | None = None) -> Any:
    """A JSON-serialisable identity of ``obj`` (see the module docstring).

    Raises:
        NotFingerprintable: for an object that cannot be identified reliably.
    """
    from jaxlimit.activations import ACTIVATIONS, Activation
    from jaxlimit.losses import Loss

    seen = set() if seen is None else seen
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return repr(float(obj))
    if isinstance(obj, (complex, bytes)):
        return repr(obj)
    if isinstance(obj, enum.Enum):
        return f"{type(obj).__qualname__}.{obj.name}"
    if isinstance(obj, np.dtype):
        return obj.str
    if isinstance(obj, type):
        return {"type": f"{obj.__module__}.{obj.__qualname__}"}
    if isinstance(obj, (np.ndarray, jax.Array)) and not jax.dtypes.issubdtype(
            getattr(obj, "dtype", None), jax.dtypes.prng_key):
        return _array_id(obj)
    if isinstance(obj, jax.Array):  # a typed PRNG key
        return {"key": _array_id(jax.random.key_data(obj))}
    if isinstance(obj, Activation):
        if ACTIVATIONS.get(obj.name) is obj:
            return {"activation": obj.name}
        return {"activation": obj.name, "values": _probe(obj.fn, _GRID), "derivative": _probe(obj.derivative, _GRID)}
    if isinstance(obj, Loss):
        p, y = np.meshgrid(_GRID[::8], _GRID[::8])
        return {"loss": obj.name, "values": _probe(obj, p.ravel(), y.ravel())}
    if isinstance(obj, types.ModuleType):
        return {"module": obj.__name__}
    if id(obj) in seen:
        return {"recursive": type(obj).__qualname__}
    seen = seen | {id(obj)}
    if isinstance(obj, dict):
        return {"dict": {str(k): describe(v, seen) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}}
    if isinstance(obj, (set, frozenset)):
        return {"set": sorted((describe(v, seen) for v in obj), key=repr)}
    if isinstance(obj, (list, tuple)):
        out = [describe(v, seen) for v in obj]
        fields = getattr(obj, "_fields", None)
        return {type(obj).__qualname__: out} if fields else out
    if isinstance(obj, functools.partial):
        return {"partial": describe(obj.func, seen), "args": describe(list(obj.args), seen),
                "keywords": describe(dict(obj.keywords), seen)}
    if isinstance(obj, types.FunctionType):
        return _function_id(obj, seen)
    if isinstance(obj, types.MethodType):
        return {"method": describe(obj.__func__, seen), "self": describe(obj.__self__, seen)}
    if dataclasses.is_dataclass(obj):  # equinox modules are dataclasses
        fields = {f.name: describe(getattr(obj, f.name), seen) for f in dataclasses.fields(obj)}
        return {"class": f"{type(obj).__module__}.{type(obj).__qualname__}", "fields": fields}
    name = _importable_name(obj)
    if name is not None:  # a library function or object reachable by its name
        return {"object": name}
    raise NotFingerprintable(
        f"cannot identify {type(obj).__qualname__} object {obj!r:.60} reliably; run without a "
        "checkpoint directory or pass a named function instead"
    )


def fingerprint(description: Any) -> str:
    """The first 24 hex digits of the SHA-256 of the canonical JSON of ``description``."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return _sha(text.encode())[:24]


def versions() -> dict:
    """Versions that change numbers: jaxlimit, jax, jaxlib, and the backend."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    from jaxlimit import __version__

    return {"jaxlimit": __version__, "jax": jax.__version__, "jaxlib": v("jaxlib"),
            "backend": jax.default_backend()}


# The store --------------------------------------------------------------------------


@dataclasses.dataclass
class BlockRecord:
    """What is saved for one block of ``lanes`` members.

    Attributes:
        steps: the step counts recorded so far (sorted, distinct).
        outputs: step count -> outputs of shape (lanes, P).
        loss: step count -> loss of shape (lanes,).
        observables: step count -> {name: array of shape (lanes, ...)}.
        state_step: the step count of ``state`` (−1 when none is saved).
        state: the training state's leaves at ``state_step``.
    """

    outputs: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    loss: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)
    observables: dict[int, dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)
    state_step: int = -1
    state: list[np.ndarray] | None = None

    @property
    def steps(self) -> list[int]:
        return sorted(self.outputs)


def _disk_error(path: Path, err: OSError) -> InputError:
    reason = os.strerror(err.errno) if err.errno else str(err)
    return InputError(f"cannot write checkpoint {str(path)!r}: {reason}; the work saved before is intact")


class BlockStore:
    """The blocks of one fingerprinted run in ``root/<fingerprint>/``."""

    def __init__(self, root: str | Path, description: dict, *, fresh: bool = False):
        self.root = Path(root)
        self.tag = fingerprint(description)
        self.dir = self.root / self.tag
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"checkpoint directory {str(self.root)!r} is a file")
        try:
            if fresh and self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True, exist_ok=True)
            meta = self.dir / "run.json"
            if not meta.exists():
                self._atomic_write(meta, json.dumps(
                    {"format": FORMAT_VERSION, "fingerprint": self.tag, "run": description}, indent=1).encode())
            else:
                self._check_meta(meta)
            probe = self.dir / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise _disk_error(self.dir, e) from None

    def _check_meta(self, meta: Path) -> None:
        try:
            saved = json.loads(meta.read_text())
        except (OSError, ValueError):
            raise InputError(f"checkpoint {str(meta)!r} is unreadable; delete it or use --fresh") from None
        if saved.get("fingerprint") != self.tag or saved.get("format") != FORMAT_VERSION:
            raise InputError(f"checkpoint {str(meta.parent)!r} does not belong to this run; "
                             "delete it or use --fresh")

    def check_space(self, needed_bytes: int) -> None:
        """Refuse before the run when the disk cannot hold what the run will save."""
        free = shutil.disk_usage(self.dir).free
        if needed_bytes > free:
            raise InputError(
                f"checkpoint directory {str(self.root)!r} has {free / 1e9:.3g} GB free but the run "
                f"will save about {needed_bytes / 1e9:.3g} GB; free space or choose another directory"
            )

    def _path(self, block: int) -> Path:
        return self.dir / f"block-{block:07d}.npz"

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def load(self, block: int) -> BlockRecord:
        """The saved record of ``block`` (empty when nothing is saved or the file is unreadable)."""
        path = self._path(block)
        record = BlockRecord()
        if not path.exists():
            return record
        try:
            with np.load(path, allow_pickle=False) as f:
                steps = [int(s) for s in f["steps"]]
                for i, s in enumerate(steps):
                    record.outputs[s] = f["outputs"][i]
                    record.loss[s] = f["loss"][i]
                    record.observables[s] = {k[4:]: f[k][i] for k in f.files if k.startswith("obs:")}
                record.state_step = int(f["state_step"])
                n_state = int(f["n_state"])
                record.state = [f[f"state:{j}"] for j in range(n_state)] if record.state_step >= 0 else None
        except Exception:  # noqa: BLE001 - a damaged block is recomputed, never trusted
            return BlockRecord()
        return record

    def save(self, block: int, record: BlockRecord) -> None:
        steps = record.steps
        arrays = {
            "steps": np.asarray(steps, np.int64),
            "outputs": np.stack([record.outputs[s] for s in steps]),
            "loss": np.stack([record.loss[s] for s in steps]),
            "state_step": np.asarray(record.state_step),
            "n_state": np.asarray(0 if record.state is None else len(record.state)),
        }
        names = sorted(record.observables[steps[0]]) if steps else []
        for name in names:
            arrays[f"obs:{name}"] = np.stack([record.observables[s][name] for s in steps])
        for j, leaf in enumerate(record.state or []):
            arrays[f"state:{j}"] = leaf
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path = self._path(block)
        try:
            self._atomic_write(path, buffer.getvalue())
        except OSError as e:
            raise _disk_error(path, e) from None


class ResultStore(BlockStore):
    """Results of computations outside the engine, in the same fingerprinted layout.

    ``DIR/<fingerprint of the run>/result-<fingerprint of the inputs>.npz``:
    :meth:`cached` returns the saved arrays of a computation whose inputs
    (numbers, arrays, keys: anything :func:`describe` identifies) match, and
    otherwise computes and saves them, so an interrupted run resumes after its
    last finished piece and a changed option recomputes only what it changes.
    """

    def cached(self, inputs: Any, compute) -> dict[str, np.ndarray]:
        path = self.dir / f"result-{fingerprint(describe(inputs))}.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as f:
                    return {k: f[k] for k in f.files}
            except Exception:  # noqa: BLE001 - a damaged file is recomputed, never trusted
                pass
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            self._atomic_write(path, buffer.getvalue())
        except OSError as e:
            raise _disk_error(path, e) from None
        return arrays


def cached(store: ResultStore | None, inputs: Any, compute) -> dict[str, np.ndarray]:
    """``compute()`` (a dict of arrays), through ``store`` when there is one."""
    if store is None:
        return {k: np.asarray(v) for k, v in compute().items()}
    return store.cached(inputs, compute)


def estimate_store_bytes(state_bytes_per_member: int, record_bytes_per_member: int, n_members: int) -> int:
    """What a run saves: one state and all records per member, plus 10 % for the files."""
    return int(math.ceil(1.1 * n_members * (state_bytes_per_member + record_bytes_per_member)))


__all__ = ["BlockRecord", "BlockStore", "NotFingerprintable", "ResultStore", "cached", "describe",
           "estimate_store_bytes", "fingerprint", "versions"]
