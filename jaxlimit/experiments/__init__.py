"""One module per experiment: options → ensemble → limit → comparison → Report.

``EXPERIMENTS`` lists the top-level commands and ``SWEEPS`` the targets of
``jaxlimit sweep``. Each module has ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> Report``.
"""

from importlib import import_module

_EXPERIMENT_MODULES = ["xavier", "mean_field", "three_layer", "teacher_student", "ensemble"]
_SWEEP_MODULES: list[str] = ["sweep_xavier", "sweep_gamma"]


def _load(names):
    mods = [import_module(f"jaxlimit.experiments.{n}") for n in names]
    return {m.NAME: m for m in mods}


EXPERIMENTS = _load(_EXPERIMENT_MODULES)
SWEEPS = _load(_SWEEP_MODULES)
