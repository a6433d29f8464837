"""The result of an ensemble run: a small pytree that saves to one file."""

from __future__ import annotations

import json
from pathlib import Path

import equinox as eqx
import numpy as np

from jaxlimit.errors import InputError


class EnsembleResult(eqx.Module):
    """Outputs of E independently initialised networks at T saved times.

    Attributes:
        outputs: shape (E, T, P): member × time × point, the M training points
            first and then the Q probe points.
        loss: shape (E, T): the mean training loss of each member.
        times: shape (T,): the saved training times (t = 0 first).
        steps: shape (T,): the step counts ⌊N t⌋ that reached them.
        diverged: shape (E,): members whose outputs became non-finite or
            exceeded the divergence threshold at any saved time. Statistics
            must use :meth:`finite` (or say why not).
        member_ids: shape (E,): member i's randomness is a function of
            (seed, member_ids[i]) alone.
        observables: extra per-member records, each of shape (E, T, ...).
        n_train: M, to split ``outputs`` into training and probe points.
        config: a JSON-serialisable description of the run.
    """

    outputs: np.ndarray
    loss: np.ndarray
    times: np.ndarray
    steps: np.ndarray
    diverged: np.ndarray
    member_ids: np.ndarray
    observables: dict
    # static: metadata of an array pytree; a tree_map over the arrays must not touch it (the result is a pytree)
    n_train: int = eqx.field(static=True)
    config: dict = eqx.field(static=True)

    @property
    def n_members(self) -> int:
        return self.outputs.shape[0]

    @property
    def n_diverged(self) -> int:
        return int(np.sum(self.diverged))

    @property
    def train_outputs(self) -> np.ndarray:
        """Shape (E, T, M)."""
        return self.outputs[:, :, : self.n_train]

    @property
    def probe_outputs(self) -> np.ndarray:
        """Shape (E, T, Q)."""
        return self.outputs[:, :, self.n_train :]

    def time_index(self, t: float) -> int:
        """The index of the saved time ``t`` (equal to 1e-6 relative); InputError if ``t`` was not saved."""
        saved = np.asarray(self.times, np.float64)
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise InputError(f"a time must be a number, got {t!r}") from None
        hits = np.flatnonzero(np.isclose(saved, t, rtol=1e-6, atol=1e-9))
        if hits.size == 0:
            shown = ", ".join(f"{v:g}" for v in saved)
            raise InputError(f"t = {t:g} was not saved; the saved times are [{shown}] (t = 0 is always saved first)")
        return int(hits[0])

    def at(self, t: float) -> np.ndarray:
        """The outputs of every member at the saved time ``t``: shape (E, P).

        Use this rather than a position: ``times=[1, 10]`` saves [0, 1, 10], so
        ``outputs[:, 0]`` is t = 0, not t = 1.
        """
        return self.outputs[:, self.time_index(t)]

    def _repr_markdown_(self) -> str:  # Jupyter: what was run, and the loss at each saved time
        from jaxlimit.display import format_value, markdown_table

        loss = np.asarray(self.loss, np.float64)[~np.asarray(self.diverged)]
        head = (f"**EnsembleResult**: {self.n_members} members ({self.n_diverged} diverged), "
                f"{len(self.times)} saved times, {self.outputs.shape[-1]} points ({self.n_train} training)")
        described = [(k, self.config[k]) for k in ("model", "trainer", "dataset", "program", "lanes", "dtype")
                     if k in self.config]
        about = markdown_table(["", ""], [(k, format_value(v)) for k, v in described])
        per_time = markdown_table(
            ["t", "steps", "mean training loss", "its standard error"],
            [(float(t), int(k), float(m), float(e)) for t, k, m, e in zip(
                self.times, self.steps, loss.mean(0) if len(loss) else [np.nan] * len(self.times),
                loss.std(0, ddof=1) / np.sqrt(len(loss)) if len(loss) > 1 else [np.nan] * len(self.times))])
        return "\n\n".join([head, about, per_time])

    def __repr__(self) -> str:  # one line, not the arrays
        from jaxlimit.display import result_repr

        return result_repr(self)

    def _repr_html_(self) -> str:
        from jaxlimit.display import result_html

        return result_html(self)

    def to_dataframe(self):
        """The outputs as a tidy pandas DataFrame: one row per (member, time, point), with the
        member's id and whether it diverged (needs pandas)."""
        from jaxlimit.display import dataframe

        e, t, p = self.outputs.shape
        return dataframe({
            "member": np.repeat(np.asarray(self.member_ids), t * p), "t": np.tile(np.repeat(self.times, p), e),
            "point": np.tile(np.arange(p), e * t), "training": np.tile(np.arange(p) < self.n_train, e * t),
            "output": np.asarray(self.outputs).reshape(-1), "diverged": np.repeat(np.asarray(self.diverged), t * p),
        }, "results")

    def finite(self) -> "EnsembleResult":
        """The same result restricted to the members that did not diverge."""
        keep = ~np.asarray(self.diverged)
        return EnsembleResult(
            outputs=self.outputs[keep], loss=self.loss[keep], times=self.times,
            steps=self.steps, diverged=self.diverged[keep], member_ids=self.member_ids[keep],
            observables={k: v[keep] for k, v in self.observables.items()},
            n_train=self.n_train, config=self.config,
        )

    def save(self, path: str | Path) -> Path:
        """Write the result to one compressed ``.npz`` file and return its path."""
        path = Path(path)
        arrays = {
            "outputs": self.outputs, "loss": self.loss, "times": self.times,
            "steps": self.steps, "diverged": self.diverged, "member_ids": self.member_ids,
        }
        arrays.update({f"observable:{k}": v for k, v in self.observables.items()})
        meta = json.dumps({"n_train": self.n_train, "config": self.config})
        with open(path, "wb") as f:
            np.savez_compressed(f, meta=np.array(meta), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "EnsembleResult":
        """Read a result written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as f:
                meta = json.loads(str(f["meta"]))
                obs = {k.split(":", 1)[1]: f[k] for k in f.files if k.startswith("observable:")}
                return cls(
                    outputs=f["outputs"], loss=f["loss"], times=f["times"], steps=f["steps"],
                    diverged=f["diverged"], member_ids=f["member_ids"], observables=obs,
                    n_train=int(meta["n_train"]), config=meta["config"],
                )
        except Exception as e:  # noqa: BLE001 - a corrupt zip raises BadZipFile, EOFError, ...
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"cannot read ensemble result {str(path)!r}: {reason}") from None
