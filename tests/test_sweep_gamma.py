"""``jaxlimit sweep gamma``: the γ family's spread and bias exponents, and its refusals."""

import json

import numpy as np
import pytest

from jaxlimit.cli import main
from jaxlimit.stats.scaling import predicted_bias_exponent, predicted_spread_exponents
from tests.helpers.refusal import assert_refused
from tests.helpers.reports import assert_figures_labelled, capture_written_report


def test_gamma_sweep_command(tmp_path, monkeypatch):
    written = capture_written_report(monkeypatch)
    out = tmp_path / "sweep"
    code = main(["sweep", "gamma", "--widths", "16,64", "--ensemble", "128", "--gammas", "0.5,1",
                 "--particles", "2048", "--n-times", "2", "--t-max", "1", "--no-progress", "--out", str(out)])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    m = rep["metrics"]
    slopes = m["spread_slopes"]
    assert abs(slopes[0]) < 0.15 and abs(slopes[1] + 0.5) < 0.15
    assert m["predicted_bias_slopes"] == [-1.0, 0.0]
    assert set(rep["verdict"].values()) <= {"consistent", "inconsistent"}
    assert rep["verdict"]["spread_gamma_1"] == "consistent"
    assert (out / "gamma_scaling.png").exists() and (out / "bias_symmetry.png").exists()
    assert (out / "by_gamma_width.csv").read_text().count("\n") == 5
    assert "bias_epsilon_exponent_by_width" in m and "bias_agreement" in m
    with np.load(out / "data.npz") as f:
        assert f["bias_gap"].shape == (2, 2, 8) and f["bias_gap_se"].shape == (2, 2, 8)
    assert_figures_labelled(written["report"], "N = 16…64", "γ = 0.5…1", "E = 128", "data:")


def test_predicted_exponents():
    assert predicted_bias_exponent(0.5) == -1.0 and predicted_bias_exponent(0.75) == -0.5
    assert predicted_bias_exponent(1.0) == 0.0
    assert predicted_spread_exponents(0.75) == (-0.5, -0.25)


GAMMA_CASES = [
    (["sweep", "gamma", "--gammas", "0.5,0.5"], "--gammas has a repeated entry"),
    (["sweep", "gamma", "--gammas", "0.75,0.750"], "--gammas has a repeated entry"),
    (["sweep", "gamma", "--gammas", "0.4"], "--gammas must be ≥ 0.5"),
    (["sweep", "gamma", "--gammas", "1.5"], "--gammas must be at most 1"),
    (["sweep", "gamma", "--gammas", "nan"], "--gammas must be a finite number"),
    (["sweep", "gamma", "--gammas", "0.5,,1"], "expected comma-separated numbers"),
    (["sweep", "gamma", "--gammas", "xavier"], "expected a number"),
    (["sweep", "gamma", "--widths", "64"], "--widths must have 2 to"),
    (["sweep", "gamma", "--widths", "64,64"], "--widths has a repeated entry"),
    (["sweep", "gamma", "--ensemble", "9"], "--ensemble must be at least P + 2"),
    (["sweep", "gamma", "--ensemble", "0"], "--ensemble must be ≥ 1"),
    (["sweep", "gamma", "--particles", "1e11"], "--particles makes the run need about"),
    (["sweep", "gamma", "--particles", "3"], "--particles must be ≥ 4"),
    (["sweep", "gamma", "--loss", "huber"], "unrecognized arguments"),
    (["sweep", "gamma", "--init", "uniform"], "unrecognized arguments"),
    (["sweep", "gamma", "--scaling", "xavier"], "unrecognized arguments"),
    (["sweep", "gamma", "--t-max", "inf"], "--t-max must be a finite number"),
    (["sweep", "gamma", "--alpha", "-2"], "--alpha must be > 0"),
    (["sweep", "gamma", "--ensemble", "100000", "--n-times", "9000", "--points", "90000"], "of memory"),
]



@pytest.mark.parametrize("argv,fragment", GAMMA_CASES, ids=[" ".join(c[0]) for c in GAMMA_CASES])
def test_command_line_refuses_in_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    assert_refused(argv, fragment, capsys, tmp_path, monkeypatch)
