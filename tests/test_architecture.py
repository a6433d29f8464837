"""The layers, read from the source with ``ast`` (no imports, no runs).

* Limits never train: no module under ``jaxlimit/limits/`` imports
  ``run_ensemble`` or anything from ``jaxlimit.training`` but the descriptions
  of training (``Trainer`` and the rest of ``jaxlimit.training.steps``).
* Notebooks, benchmarks and tests use the experiments layer only through its
  configurations: ``jaxlimit.experiments`` (``COMMANDS``, ``SWEEPS``, ``run``),
  ``jaxlimit.experiments.<name>`` (its config class and ``run``), its
  ``config`` module and the shared option declarations; never an
  ``experiment``, ``figures`` or ``problem`` module.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMITS = sorted((ROOT / "jaxlimit" / "limits").rglob("*.py"))

TRAINING_DESCRIPTIONS = {"Trainer", "METHODS", "make_step"}
"""What a limit may import from ``jaxlimit.training`` itself (all defined in ``jaxlimit.training.steps``)."""

EXPERIMENTS = "jaxlimit.experiments"
EXPERIMENTS_TOP = {"COMMANDS", "SWEEPS", "run"}
CONFIG_MODULES = {"config", "options"}


def _imports(tree: ast.AST):
    """(module, name or None) for every import in ``tree``, nested ones included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.module, alias.name


def _limit_violations(tree: ast.AST) -> list[str]:
    bad = []
    for module, name in _imports(tree):
        if name == "run_ensemble" or module.endswith("run_ensemble"):
            bad.append(f"{module}.{name}")
        elif module == "jaxlimit.training":
            if name not in TRAINING_DESCRIPTIONS:
                bad.append(f"{module}.{name}")
        elif module.startswith("jaxlimit.training.") and module != "jaxlimit.training.steps":
            bad.append(f"{module}.{name}" if name else module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "run_ensemble":
            bad.append("….run_ensemble")
    return bad


@pytest.mark.parametrize("path", LIMITS, ids=[p.name for p in LIMITS])
def test_limits_never_train(path):
    bad = _limit_violations(ast.parse(path.read_text(), str(path)))
    assert not bad, f"{path.relative_to(ROOT)} imports training machinery: {bad}"


def test_the_limit_check_catches_what_it_should():
    assert _limit_violations(ast.parse("from jaxlimit.training import run_ensemble"))
    assert _limit_violations(ast.parse("def f():\n    from jaxlimit.training.ensemble import member_keys"))
    assert _limit_violations(ast.parse("import jaxlimit.training.three_layer"))
    assert _limit_violations(ast.parse("import jaxlimit as jl\njl.run_ensemble"))
    assert not _limit_violations(ast.parse("from jaxlimit.training.steps import Trainer\n"
                                           "from jaxlimit.training import Trainer"))


def _experiment_violations(tree: ast.AST) -> list[str]:
    bad = []
    for module, name in _imports(tree):
        if module != EXPERIMENTS and not module.startswith(EXPERIMENTS + "."):
            continue
        parts = module.split(".")[2:]  # below jaxlimit.experiments
        if not parts:  # the package: its registry and run, its option modules (or the package itself)
            ok = name is None or name in EXPERIMENTS_TOP or name in CONFIG_MODULES or name.endswith("Config")
        elif len(parts) == 1 and parts[0] in CONFIG_MODULES:
            ok = True
        elif len(parts) == 1:  # one experiment's package: its config class and run
            ok = name is not None and (name == "run" or name.endswith("Config"))
        else:
            ok = len(parts) == 2 and parts[1] == "config"
        if not ok:
            bad.append(f"{module}.{name}" if name else module)
    return bad


def _sources():
    for path in sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py")):
        yield path, path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        # IPython magics and shell lines are not Python
        yield path, "\n".join(line for block in code for line in block.splitlines()
                              if not line.lstrip().startswith(("%", "!")))


def test_outside_code_uses_only_the_experiments_configurations():
    found = {}
    for path, text in _sources():
        bad = _experiment_violations(ast.parse(text, str(path)))
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    assert not found, f"experiments internals imported (move the library code into the library): {found}"


def test_the_experiments_check_catches_what_it_should():
    assert _experiment_violations(ast.parse("from jaxlimit.experiments.problem import two_layer_data"))
    assert _experiment_violations(ast.parse("from jaxlimit.experiments.three_layer.experiment import build_model"))
    assert _experiment_violations(ast.parse("from jaxlimit.experiments.teacher_student import experiment"))
    assert not _experiment_violations(ast.parse(
        "from jaxlimit.experiments import COMMANDS, SWEEPS, run\n"
        "from jaxlimit.experiments.deep import DeepConfig, run\n"
        "from jaxlimit.experiments.three_layer.config import ZERO_AT_ZERO\n"
        "import jaxlimit.experiments as experiments"))


def test_the_top_level_is_curated():
    """The top level holds what a user's script calls (the README's and notebooks' names); the
    specialised helpers live in their subpackages and are not re-exported."""
    import jaxlimit

    names = set(jaxlimit.__all__) - {"__version__"}
    assert len(names) <= 60, len(names)
    for user_facing in ("Limit", "compare", "run_ensemble", "Trainer", "MLP", "from_equinox", "lazy_limit",
                        "ode_limit", "mlp_limit", "committee_ode", "coord_check", "InputError"):
        assert user_facing in names, user_facing
    for helper in ("relu_kernel", "relu_sgd", "estimate_mlp_kernels", "predict_fluctuations", "gaussian_w2",
                   "XavierKernels", "get_activation", "run_width_coupling"):
        assert helper not in names, helper
    for name in names:
        getattr(jaxlimit, name)  # every export resolves


def _config_defaults(tree: ast.AST) -> list[str]:
    """``getattr(config, "name", default)``: a field a configuration may or may not declare."""
    return [f"line {node.lineno}: getattr({node.args[0].id}, {ast.unparse(node.args[1])}, …)"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) == 3 and isinstance(node.args[0], ast.Name) and node.args[0].id in ("config", "cls")]


def test_configurations_declare_what_the_library_reads():
    """The library reads a configuration's fields directly: no getattr with a default stands in for a
    field that some configurations lack (a misspelt or missing field then fails loudly, not silently)."""
    bad = {str(p.relative_to(ROOT)): v for p in sorted((ROOT / "jaxlimit").rglob("*.py"))
           if (v := _config_defaults(ast.parse(p.read_text())))}
    assert not bad, bad
    assert _config_defaults(ast.parse('getattr(config, "scaling", "xavier")'))
    assert not _config_defaults(ast.parse('getattr(config, name)'))
