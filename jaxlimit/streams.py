"""Random streams by name: one seed per run, one key per purpose.

An experiment draws its data, its ensemble members, its limit's quadrature,
extra networks and permutation tests from separate streams. Each stream's key
is a pure function of ``(seed, name, *indices)``:

    words = SeedSequence([seed, utf8(name)..., indices...]).generate_state(2)
    key   = wrap_key_data(words)     (a threefry2x32 key)

so streams never overlap by accident (no magic offsets such as ``seed + 7919``),
a width or an arm is an index (``stream_key(seed, "members", width)``), and the
key does not depend on ``jax_enable_x64``. Draws made from these keys use
explicit 32-bit dtypes wherever the numbers must not depend on x64 either.
"""

from __future__ import annotations

import contextlib
import contextvars

import jax
import jax.numpy as jnp
import numpy as np

from jaxlimit.errors import InputError
from jaxlimit.validation import MAX_SEED

_RECORDED: contextvars.ContextVar[list | None] = contextvars.ContextVar("jaxlimit_streams", default=None)


@contextlib.contextmanager
def recording_streams():
    """Collect every stream drawn inside the block as ``{"seed", "name", "indices"}``
    entries (for a report's provenance)."""
    log: list = []
    token = _RECORDED.set(log)
    try:
        yield log
    finally:
        _RECORDED.reset(token)


def _record(seed: int, name: str, indices) -> None:
    log = _RECORDED.get()
    if log is not None:
        entry = {"seed": seed, "name": name, "indices": [int(i) for i in indices]}
        if entry not in log:
            log.append(entry)


def check_seed(seed, name: str = "seed") -> int:
    """A seed is an integer in [0, 2^63 − 1]; anything else is refused by ``name``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        if isinstance(seed, (float, np.floating)) and float(seed).is_integer():
            seed = int(seed)
        else:
            raise InputError(f"{name} must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"{name} must lie in [0, 2^63 - 1], got {seed}")
    return seed


def stream_key(seed: int, name: str, *indices: int) -> jax.Array:
    """The key of the stream ``name`` (and optional integer ``indices``) of run ``seed``."""
    seed = check_seed(seed)
    if not isinstance(name, str) or not name:
        raise InputError(f"a stream needs a non-empty name, got {name!r}")
    for i in indices:
        check_seed(i, f"stream index of {name!r}")
    _record(seed, name, indices)
    entropy = [seed, *name.encode("utf-8"), len(name), *(int(i) for i in indices)]
    words = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return jax.random.wrap_key_data(jnp.asarray(words, dtype=jnp.uint32), impl="threefry2x32")


def stream_seed(seed: int, name: str, *indices: int) -> int:
    """An integer seed for the stream ``name`` (for NumPy generators and nested runs)."""
    seed = check_seed(seed)
    _record(seed, name, indices)
    entropy = [seed, *name.encode("utf-8"), len(name), *(int(i) for i in indices)]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def key_words(key: jax.Array) -> list[int]:
    """The raw words of a key, for fingerprints and reports."""
    return [int(w) for w in np.asarray(jax.random.key_data(key)).ravel()]


def member_keys(root: jax.Array, member_ids) -> jax.Array:
    """Member i's key, ``fold_in(root, i)``: a function of (root, i) alone, so the
    same member is the same network whatever the chunk, block or device."""
    ids = jnp.asarray(member_ids, dtype=jnp.uint32)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(ids)


__all__ = ["MAX_SEED", "check_seed", "key_words", "member_keys", "recording_streams", "stream_key",
           "stream_seed"]
