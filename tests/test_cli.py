"""The command line: help, reports with provenance and data files, divergence."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from jaxlimit.cli import main
from jaxlimit.experiments import COMMANDS, SWEEPS
from jaxlimit.report import SCHEMA_VERSION
from tests.helpers.reports import assert_text_fits


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_help_is_generated_from_the_config_and_imports_no_jax():
    code = ("import sys; from jaxlimit.cli import main\n"
            "try:\n    main(['xavier', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'jax' not in sys.modules, 'help imported jax'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for option in ("--width", "--ensemble", "--alpha", "--t-max", "--points", "--seed", "--out", "--checkpoint"):
        assert option in out
    assert "--loss" not in out and "--init" not in out and "--scaling" not in out  # xavier accepts none


def test_one_name_per_concept_across_commands():
    from jaxlimit.config import specs

    helps: dict[str, set] = {}
    for config_type in [*COMMANDS.values(), *SWEEPS.values()]:
        for name, spec, _ in specs(config_type):
            helps.setdefault(name, set()).add(spec.help)
    for name in ("ensemble", "alpha", "seed", "t_max", "points", "width", "step"):
        assert name in helps
    # No alternative spellings of the ensemble size or the step: arms' sizes are "<arm>_ensemble", and
    # the time step of a discretised flow is "step" (teacher-student, three-layer, deep), never "lr" or "eta".
    for alias in ("members", "inits", "noisy_runs", "sgd_runs", "runs", "eps", "epsilon", "lr", "eta",
                  "learning_rate"):
        assert alias not in helps
    # One meaning per name: --w-std is the two-layer input weights' standard deviation; the deep
    # MLP's σ_w (weights σ_w/√fan-in · N(0, 1)) is --weight-scale.
    assert helps["w_std"] == {"standard deviation of the input weights w at initialisation"}
    assert len(helps["weight_scale"]) == 1


def test_ensemble_command_writes_report_data_and_provenance(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["ensemble", "--width", "32", "--ensemble", "16", "--t-max", "0.5",
                 "--n-times", "2", "--out", str(out), "--no-progress", "--seed", "3"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["experiment"] == "ensemble" and report["schema_version"] == SCHEMA_VERSION
    assert report["metrics"]["n_members"] == 16 and report["metrics"]["n_diverged"] == 0
    assert report["config"]["width"] == 32 and report["config"]["seed"] == 3
    prov = report["provenance"]
    assert prov["command_line"][:2] == ["jaxlimit", "ensemble"]
    assert prov["versions"]["jax"] and prov["versions"]["jaxlimit"] and prov["versions"]["numpy"]
    assert "cpu" in prov["device"].lower()
    names = {s["name"] for s in prov["random_streams"]}
    assert {"data", "members"} <= names
    assert report["timing"]["ensemble"] > 0 and report["timing"]["total"] >= report["timing"]["ensemble"]
    assert (out / "report.md").read_text().startswith("# jaxlimit report: ensemble")
    assert (out / "ensemble.png").stat().st_size > 1000 and (out / "ensemble.pdf").stat().st_size > 1000
    with np.load(out / "data.npz") as f:
        assert f["outputs"].shape == (16, 3, 8)
        np.testing.assert_allclose(report["metrics"]["output_mean_final"], f["outputs"][:, -1].mean(axis=0),
                                   rtol=1e-6)
    with open(out / "outputs_by_time.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 8 and {"t", "point", "mean", "sd", "se_of_mean"} <= set(rows[0])


def test_rerunning_into_a_report_directory_replaces_it(tmp_path):
    out = tmp_path / "rep"
    argv = ["ensemble", "--width", "8", "--ensemble", "4", "--t-max", "0.25", "--n-times", "1",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    (out / "stale.txt").write_text("from an older run")
    assert main(argv + ["--seed", "1"]) == 0
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "report.json").read_text())["config"]["seed"] == 1


def test_checkpoint_option_resumes(tmp_path):
    out, ckpt = tmp_path / "rep", tmp_path / "ckpt"
    argv = ["ensemble", "--width", "16", "--ensemble", "8", "--t-max", "0.5", "--n-times", "2",
            "--out", str(out), "--no-progress", "--checkpoint", str(ckpt)]
    assert main(argv) == 0
    first = json.loads((out / "report.json").read_text())["metrics"]["output_mean_final"]
    assert list(ckpt.glob("*/block-*.npz"))
    assert main(argv) == 0
    assert json.loads((out / "report.json").read_text())["metrics"]["output_mean_final"] == first
    assert main(argv + ["--fresh"]) == 0


def test_divergence_is_reported_not_averaged(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["ensemble", "--width", "16", "--ensemble", "8", "--alpha", "1e6",
                 "--t-max", "0.5", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["n_diverged"] == 8
    assert report["metrics"]["final_train_loss_mean"] is None  # no finite member to average
    assert "diverged" in capsys.readouterr().err


def test_figures_have_titles_and_axis_labels(tmp_path):
    from jaxlimit.experiments import run
    from jaxlimit.experiments.xavier import XavierConfig

    report = run(XavierConfig(width=32, ensemble=64, t_max=0.5, n_times=2, long_members=2, long_time=1.0,
                              no_progress=True, out=str(tmp_path / "x")))
    assert set(report.figures) == {"trajectories", "marginal", "loss", "effects"}
    assert_text_fits(report)  # no title, label or legend outside the figure or over another panel
    assert report.config["dim"] == 8 and report.config["compare_times"] == [0.0, 0.25, 0.5]  # as the run used it
    for name, fig in report.figures.items():
        title = fig.get_suptitle()
        assert "N = 32" in title and "γ = 1/2" in title and "E = 64" in title, (name, title)
        for ax in fig.axes:
            if ax.get_visible() and ax.has_data():
                assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())


def test_console_script_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxlimit", "ensemble", "--activation", "swish", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "jaxlimit ensemble: error: --activation must be one of tanh, erf, relu, sigmoid, gelu, identity, "
        "abs, sin, cos, leaky_relu, got 'swish'"
    )
