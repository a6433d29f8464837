"""How :func:`~jaxlimit.training.run_ensemble` runs, saves and guards an ensemble.

The science arguments (model, data, trainer, times, members, seed, observables,
dtype) are ``run_ensemble``'s own; everything else is one of three small,
frozen objects, each checked when it is built (one
:class:`~jaxlimit.errors.InputError` line naming the field):

* :class:`Execution`: how the members are executed (chunking, memory budget,
  vmap width, member program, devices, progress bar). None of these change a
  member's numbers except ``lanes`` below its bit-for-bit width and
  ``program`` (hand-derived programs agree with autodiff to float rounding);
  both are part of a checkpoint's fingerprint.
* :class:`Checkpoint`: where finished work is saved, and whether to start over.
* :class:`Guards`: when a member counts as diverged, and what an unstable
  full-batch step does.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from jaxlimit.errors import InputError
from jaxlimit.training.fast import REPRESENTATIONS
from jaxlimit.training.guards import STEP_CHECKS
from jaxlimit.validation import require_int, require_real

DEFAULT_MEMORY_BUDGET = 2 * 2**30
"""Bytes one compiled call may use by default (2 GiB)."""
MIN_MEMORY_BUDGET = 2**20
PROGRAMS = ("auto", "generic", *REPRESENTATIONS)


@dataclasses.dataclass(frozen=True)
class Execution:
    """How an ensemble is executed.

    Attributes:
        chunk_size: members per compiled call, rounded up to whole blocks on
            every device; None (the default): one block per device (the least
            work lost to a kill); at most what fits ``memory_budget``.
        memory_budget: bytes one compiled call may use (at least 1 MiB); a
            member's share is a conservative estimate of its peak memory.
        lanes: the vmap width (members per block); None: chosen by backend,
            ensemble size and memory (:func:`jaxlimit.training.ensemble.default_lanes`).
            A member's bits depend on it, not on the chunk size or device count.
        program: how one member is trained: ``"generic"`` (``jax.grad``, any
            model), a hand-derived representation for the two-layer family
            (``"weights"`` or ``"pre-activations"``, :mod:`~jaxlimit.training.fast`),
            or ``"auto"``: the fastest that applies. They agree to float
            rounding, not bit for bit, so the choice is part of a checkpoint's
            fingerprint.
        devices: the local devices to shard members over; None: all of
            ``jax.local_devices()``. Results are bitwise the same for any number of them.
        progress: show a progress bar of finished member-steps on standard error; None:
            shown in a terminal or a notebook, hidden when ``CI`` is set or standard
            error is not a terminal (:func:`jaxlimit.display.show_progress`).
    """

    chunk_size: int | None = None
    memory_budget: float = DEFAULT_MEMORY_BUDGET
    lanes: int | None = None
    program: str = "auto"
    devices: tuple[Any, ...] | None = None
    progress: bool | None = None

    def __post_init__(self):
        if self.chunk_size is not None:
            object.__setattr__(self, "chunk_size", require_int(self.chunk_size, "chunk_size"))
        if self.lanes is not None:
            object.__setattr__(self, "lanes", require_int(self.lanes, "lanes"))
        budget = self.memory_budget
        if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget >= MIN_MEMORY_BUDGET):
            raise InputError(f"memory_budget must be at least 1 MiB (2**20 bytes), got {budget!r}")
        if self.program not in PROGRAMS:
            raise InputError(f"unknown program {self.program!r}; choose {', '.join(PROGRAMS)}")
        if self.devices is not None:
            devices = tuple(self.devices)
            if not devices:
                raise InputError("devices must name at least one device")
            object.__setattr__(self, "devices", devices)
        if self.progress is not None and not isinstance(self.progress, bool):
            raise InputError(f"progress must be True, False or None, got {self.progress!r}")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Where an ensemble's finished work is saved.

    Every block's records and training state are saved in ``directory`` after
    every segment, under the run's fingerprint (everything that determines a
    member's numbers); a rerun resumes with any chunk size, a run with more
    members or later times reuses what was computed, and a run of anything
    else computes afresh (:mod:`jaxlimit.training.checkpoints`).

    Attributes:
        directory: the checkpoint directory (created when needed).
        fresh: discard what ``directory`` holds for this run first.
    """

    directory: str | Path
    fresh: bool = False

    def __post_init__(self):
        if not isinstance(self.directory, (str, os.PathLike)) or not str(self.directory).strip():
            raise InputError(f"checkpoint directory must be a path, got {self.directory!r}")
        if not isinstance(self.fresh, bool):
            raise InputError(f"fresh must be True or False, got {self.fresh!r}")


@dataclasses.dataclass(frozen=True)
class Guards:
    """What counts as a diverged member, and what an unstable step does.

    Attributes:
        divergence_threshold: a member whose output is non-finite or exceeds
            this in absolute value at any saved time is flagged as diverged
            (flagged, not dropped; a :class:`~jaxlimit.training.guards.DivergenceWarning`
            says so at the first saved time that shows it and when the run ends).
        step_check: for full-batch training, α λ_max/M of the kernel of the engine's
            per-leaf rates is estimated from a few members at initialisation, before
            training (:mod:`jaxlimit.training.guards`); above 2 descent diverges:
            ``"warn"`` (an :class:`~jaxlimit.training.guards.UnstableStepWarning`),
            ``"error"`` (an InputError) or ``"off"``.
    """

    divergence_threshold: float = 1e6
    step_check: str = "warn"

    def __post_init__(self):
        object.__setattr__(self, "divergence_threshold",
                           require_real(self.divergence_threshold, "divergence_threshold"))
        if self.step_check not in STEP_CHECKS:
            raise InputError(f"step_check must be one of {', '.join(STEP_CHECKS)}, got {self.step_check!r}")


__all__ = ["DEFAULT_MEMORY_BUDGET", "PROGRAMS", "Checkpoint", "Execution", "Guards"]
