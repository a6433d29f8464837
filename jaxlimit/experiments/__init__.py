"""The experiments: one package each, ``config.py`` (options, light), ``experiment.py``
(config → ensemble → limit → comparison → Report) and ``figures.py``.

``COMMANDS`` and ``SWEEPS`` map command names to configuration classes (the
command line is generated from them); :func:`run` runs any configuration and
adds the report's provenance. Experiments never import one another.
"""

from __future__ import annotations

import importlib
import time

from jaxlimit.config import Config
from jaxlimit.experiments.committee.config import CommitteeConfig
from jaxlimit.experiments.coord_check.config import CoordCheckConfig
from jaxlimit.experiments.deep.config import DeepConfig
from jaxlimit.experiments.ensemble.config import EnsembleConfig
from jaxlimit.experiments.feature_learning.config import FeatureLearningConfig
from jaxlimit.experiments.feature_learning.sweep_config import SweepFeatureLearningConfig
from jaxlimit.experiments.mean_field.config import MeanFieldConfig
from jaxlimit.experiments.sweep_committee.config import SweepCommitteeConfig
from jaxlimit.experiments.sweep_deep.config import SweepDeepConfig
from jaxlimit.experiments.sweep_gamma.config import SweepGammaConfig
from jaxlimit.experiments.sweep_lr.config import SweepLrConfig
from jaxlimit.experiments.sweep_xavier.config import SweepXavierConfig
from jaxlimit.experiments.teacher_student.config import TeacherStudentConfig
from jaxlimit.experiments.three_layer.config import ThreeLayerConfig
from jaxlimit.experiments.xavier.config import XavierConfig

COMMANDS: dict[str, type[Config]] = {c.NAME: c for c in (
    XavierConfig, DeepConfig, MeanFieldConfig, ThreeLayerConfig, TeacherStudentConfig, EnsembleConfig,
    FeatureLearningConfig, CoordCheckConfig, CommitteeConfig)}
SWEEPS: dict[str, type[Config]] = {c.NAME.split()[-1]: c for c in (SweepXavierConfig, SweepGammaConfig, SweepDeepConfig,
                                                                   SweepFeatureLearningConfig, SweepLrConfig,
                                                                   SweepCommitteeConfig)}


def run(config: Config, *, command_line: list[str] | None = None):
    """Run an experiment configuration and return its :class:`~jaxlimit.report.Report`.

    The report's ``provenance`` records ``command_line`` (None from the
    library), the package versions, device, platform, git revision and every
    random stream the run drew.
    """
    import jax

    from jaxlimit.report import provenance, to_jsonable
    from jaxlimit.streams import recording_streams

    # Limits are solved in float64 (ensembles pass float32 explicitly, and every
    # random stream is the same with and without x64), as on the command line.
    jax.config.update("jax_enable_x64", True)
    if not isinstance(config, Config):
        raise TypeError(f"expected an experiment configuration, got {type(config).__name__}")
    module = importlib.import_module(config.RUNNER)
    start = time.perf_counter()
    with recording_streams() as streams:
        report = module.run(config)
    report.timing["total"] = time.perf_counter() - start
    # The configuration as the run used it: every computed default filled in (``"dim": 8``, not null).
    report.config = {"command": config.NAME, **to_jsonable(config.resolved()), **report.config}
    report.provenance = provenance(streams=streams, command_line=command_line)
    return report


__all__ = ["COMMANDS", "SWEEPS", "run"]
