"""The command line: help, reports, and one-line errors with exit status 2."""

import json
import subprocess
import sys

import pytest

from jaxlimit.cli import main


def test_help_lists_experiments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "ensemble" in capsys.readouterr().out


def test_ensemble_experiment_writes_a_report(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["ensemble", "--width", "32", "--ensemble", "16", "--t-max", "0.5",
                 "--n-times", "2", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["experiment"] == "ensemble"
    assert report["metrics"]["n_members"] == 16 and report["metrics"]["n_diverged"] == 0
    assert report["config"]["model"]["width"] == 32
    assert (out / "report.md").read_text().startswith("# jaxlimit report: ensemble")
    assert (out / "ensemble.png").stat().st_size > 1000


def test_divergence_is_reported_not_averaged(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["ensemble", "--width", "16", "--ensemble", "8", "--alpha", "1e6",
                 "--t-max", "0.5", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["metrics"]["n_diverged"] == 8
    assert report["metrics"]["final_train_loss_mean"] is None  # no finite member to average
    assert "diverged" in capsys.readouterr().err


@pytest.mark.parametrize("argv,fragment", [
    (["ensemble", "--width", "0"], "--width: expected a positive integer"),
    (["ensemble", "--activation", "swish"], "unknown activation 'swish'"),
    (["ensemble", "--scaling", "2"], "gamma must lie in [0.5, 1]"),
    (["ensemble", "--alpha", "nan"], "--alpha: expected a positive finite number"),
    (["ensemble", "--points", "2000", "--data", "digits"], "distinct images"),
    (["nonsense"], "invalid choice"),
])
def test_bad_options_exit_2_with_one_line(argv, fragment, capsys, tmp_path):
    try:
        code = main(argv + ["--out", str(tmp_path / "x")] if argv[0] != "nonsense" else argv)
    except SystemExit as e:  # argparse errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_console_script_error_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxlimit", "ensemble", "--activation", "swish", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "jaxlimit: error: unknown activation 'swish'; choose one of tanh, erf, relu, sigmoid, gelu, identity, "
        "abs, sin, cos, leaky_relu"
    )
